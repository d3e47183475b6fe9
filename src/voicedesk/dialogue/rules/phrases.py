"""What the rule engine says, per language. Short sentences: they are spoken on the phone."""

from __future__ import annotations

from voicedesk.domain.profile import Language

PHRASES: dict[str, dict[Language, str]] = {
    "greeting": {
        "de": "{business}, guten Tag. Wie kann ich Ihnen helfen?",
        "en": "Hello, this is {business}. How can I help you?",
    },
    "hello_known": {"de": "Hallo {name}!", "en": "Hello {name}!"},
    "how_help": {"de": "Wie kann ich Ihnen helfen?", "en": "How can I help you?"},
    "ask_service": {
        "de": "Gern. Welche Leistung möchten Sie buchen? Wir bieten {services} an.",
        "en": "Sure. Which service would you like to book? We offer {services}.",
    },
    "unknown_service": {
        "de": "Das bieten wir leider nicht an. Möglich sind {services}. Was davon möchten Sie?",
        "en": "I'm afraid we don't offer that. We offer {services}. Which would you like?",
    },
    "ask_when": {"de": "Wann hätten Sie denn Zeit?", "en": "When would suit you?"},
    "ask_when_again": {
        "de": "Welcher Tag oder welche Uhrzeit würde Ihnen passen? Zum Beispiel morgen "
        "Vormittag oder nächsten Dienstag um 10 Uhr.",
        "en": "Which day or time would suit you? For example tomorrow morning or next Tuesday at 10 am.",
    },
    "offer": {
        "de": "Ich hätte {slot} frei. Passt Ihnen das?",
        "en": "I have {slot} available. Does that suit you?",
    },
    "offer_instead": {
        "de": "{wish} ist leider schon vergeben. Ich hätte {slot} frei. Passt Ihnen das?",
        "en": "{wish} is already taken, I'm afraid. I have {slot} available. Does that suit you?",
    },
    "offer_closed": {
        "de": "{wish} haben wir geschlossen. Der nächste freie Termin wäre {slot}. Passt das?",
        "en": "We're closed {wish}. The next free appointment would be {slot}. Does that suit you?",
    },
    "offer_full": {
        "de": "{wish} ist leider nichts mehr frei. Der nächste freie Termin wäre {slot}. Passt das?",
        "en": "I'm afraid {wish} is fully booked. The next free appointment would be {slot}. Does that suit you?",
    },
    "offer_next": {"de": "Wie wäre es mit {slot}?", "en": "How about {slot}?"},
    "offer_same_day": {"de": "Wie wäre es um {time}?", "en": "How about {time}?"},
    "no_slots": {
        "de": "Dafür finde ich leider keinen freien Termin. Welcher andere Zeitraum würde passen?",
        "en": "I can't find a free appointment for that, I'm afraid. Which other time would suit you?",
    },
    "ask_other_time": {"de": "Wann würde es Ihnen denn besser passen?", "en": "When would suit you better?"},
    "ask_name": {"de": "Auf welchen Namen darf ich das eintragen?", "en": "What name shall I put it under?"},
    "ask_name_message": {"de": "Wie ist Ihr Name, bitte?", "en": "May I have your name, please?"},
    "ask_name_again": {
        "de": "Entschuldigung, den Namen habe ich nicht verstanden. Buchstabieren Sie ihn "
        "gern, zum Beispiel M, ü, l, l, e, r.",
        "en": "Sorry, I didn't catch the name. Feel free to spell it, for example S, m, i, t, h.",
    },
    "ask_phone": {
        "de": "Unter welcher Nummer können wir Sie erreichen?",
        "en": "What number can we reach you on?",
    },
    "ask_phone_same": {
        "de": "Können wir Sie unter der Nummer erreichen, von der Sie anrufen?",
        "en": "Can we reach you on the number you're calling from?",
    },
    "ask_phone_again": {
        "de": "Die Nummer habe ich nicht verstanden. Bitte sagen Sie sie Ziffer für Ziffer.",
        "en": "I didn't catch the number. Please say it digit by digit.",
    },
    "confirm_phone": {
        "de": "Ich habe die Nummer {phone} notiert. Stimmt das?",
        "en": "I've noted the number {phone}. Is that right?",
    },
    "confirm_book": {
        "de": "Ich fasse zusammen: {service} {slot}, auf den Namen {name}. Soll ich das so buchen?",
        "en": "Let me confirm: {service} {slot}, under the name {name}. Shall I book that?",
    },
    "booked": {
        "de": "Ihr Termin ist eingetragen: {service} {slot}. Kann ich sonst noch etwas für Sie tun?",
        "en": "You're booked in: {service} {slot}. Is there anything else I can do for you?",
    },
    "slot_gone": {
        "de": "Dieser Termin wurde gerade vergeben, das tut mir leid.",
        "en": "Sorry, that slot has just been taken.",
    },
    "what_change": {
        "de": "Was soll ich ändern: den Tag, die Uhrzeit, die Leistung oder den Namen?",
        "en": "What should I change: the day, the time, the service or the name?",
    },
    "lookup_name": {
        "de": "Unter Ihrer Nummer finde ich keinen Termin. Auf welchen Namen wurde er gebucht?",
        "en": "I can't find an appointment under your number. What name was it booked under?",
    },
    "lookup_name_only": {
        "de": "Auf welchen Namen wurde der Termin gebucht?",
        "en": "What name was the appointment booked under?",
    },
    "no_appointment": {
        "de": "Ich finde leider keinen Termin für Sie.",
        "en": "I'm afraid I can't find an appointment for you.",
    },
    "which_appointment": {
        "de": "Ich sehe mehrere Termine: {items}. Welchen meinen Sie?",
        "en": "I see several appointments: {items}. Which one do you mean?",
    },
    "confirm_cancel": {
        "de": "Ich sehe Ihren Termin: {service} {slot}. Soll ich ihn absagen?",
        "en": "I see your appointment: {service} {slot}. Shall I cancel it?",
    },
    "cancelled": {
        "de": "Ihr Termin {slot} ist abgesagt. Kann ich sonst noch etwas für Sie tun?",
        "en": "Your appointment {slot} is cancelled. Is there anything else I can do for you?",
    },
    "kept": {
        "de": "Gut, der Termin bleibt bestehen. Kann ich sonst noch etwas für Sie tun?",
        "en": "All right, the appointment stays as it is. Is there anything else I can do for you?",
    },
    "reschedule_found": {
        "de": "Ich sehe Ihren Termin: {service} {slot}. Wann hätten Sie stattdessen Zeit?",
        "en": "I see your appointment: {service} {slot}. When would suit you instead?",
    },
    "confirm_reschedule": {
        "de": "Soll ich Ihren Termin von {old} auf {new} verlegen?",
        "en": "Shall I move your appointment from {old} to {new}?",
    },
    "rescheduled": {
        "de": "Erledigt, Ihr Termin ist jetzt {slot}. Kann ich sonst noch etwas für Sie tun?",
        "en": "Done, your appointment is now {slot}. Is there anything else I can do for you?",
    },
    "ask_reason": {
        "de": "Gern nehme ich eine Nachricht auf. Worum geht es?",
        "en": "I'll gladly take a message. What is it about?",
    },
    "ask_reason_short": {"de": "Worum geht es?", "en": "What is it about?"},
    "message_taken": {
        "de": "Danke, ich habe Ihre Nachricht notiert. Wir rufen Sie unter {phone} zurück. "
        "Kann ich sonst noch etwas für Sie tun?",
        "en": "Thank you, I've taken your message. We'll call you back on {phone}. "
        "Is there anything else I can do for you?",
    },
    "message_taken_no_phone": {
        "de": "Danke, ich habe Ihre Nachricht notiert. Kann ich sonst noch etwas für Sie tun?",
        "en": "Thank you, I've taken your message. Is there anything else I can do for you?",
    },
    "transfer": {
        "de": "Einen Moment bitte, ich verbinde Sie mit einem Mitarbeiter.",
        "en": "One moment please, I'll put you through to a member of staff.",
    },
    "escalate": {
        "de": "Das kann ich nicht selbst entscheiden, das klärt ein Mitarbeiter mit Ihnen.",
        "en": "I can't decide that myself; a member of staff will sort it out with you.",
    },
    "no_transfer": {
        "de": "Ich kann Sie gerade leider nicht verbinden, aber ich nehme gern eine Nachricht auf, "
        "und wir rufen Sie zurück.",
        "en": "I can't put you through right now, but I can take a message and we'll call you back.",
    },
    "transfer_failed": {
        "de": "Leider ist gerade niemand erreichbar.",
        "en": "I'm sorry, nobody is available right now.",
    },
    "emergency": {
        "de": "Bei einem medizinischen Notfall rufen Sie bitte sofort die 112 an.",
        "en": "If this is a medical emergency, please hang up and call 112 or your local emergency number right away.",
    },
    "offer_fallback": {
        "de": "Soll ich Sie mit einem Mitarbeiter verbinden, oder möchten Sie eine Nachricht hinterlassen?",
        "en": "Shall I put you through to a member of staff, or would you like to leave a message?",
    },
    "offer_message": {
        "de": "Möchten Sie eine Nachricht hinterlassen? Wir rufen Sie dann zurück.",
        "en": "Would you like to leave a message? We'll call you back.",
    },
    "not_understood": {
        "de": "Entschuldigung, das habe ich nicht verstanden. Ich kann Termine vereinbaren, "
        "verschieben oder absagen, Fragen beantworten oder eine Nachricht aufnehmen.",
        "en": "Sorry, I didn't understand that. I can book, move or cancel appointments, "
        "answer questions or take a message.",
    },
    "rude": {"de": "Ich verstehe, dass das ärgerlich ist.", "en": "I understand this is frustrating."},
    "still_there": {"de": "Sind Sie noch da?", "en": "Are you still there?"},
    "cant_hear": {"de": "Ich kann Sie leider nicht hören.", "en": "I'm afraid I can't hear you."},
    "silent_end": {
        "de": "Ich beende das Gespräch jetzt. Rufen Sie gern noch einmal an. Auf Wiederhören!",
        "en": "I'll end the call now. Please feel free to call again. Goodbye!",
    },
    "anything_else": {
        "de": "Kann ich sonst noch etwas für Sie tun?",
        "en": "Is there anything else I can do for you?",
    },
    "what_else": {"de": "Gern. Womit kann ich Ihnen helfen?", "en": "Sure. What can I do for you?"},
    "goodbye": {
        "de": "Vielen Dank für Ihren Anruf. Auf Wiederhören!",
        "en": "Thank you for calling. Goodbye!",
    },
    "no_answer_faq": {
        "de": "Dazu habe ich leider keine Auskunft.",
        "en": "I'm afraid I don't have that information.",
    },
    "dsar_ask_contact": {
        "de": "Ich nehme Ihre Anfrage zu Ihren Daten gern auf. Unter welcher Telefonnummer oder "
        "E-Mail-Adresse erreichen wir Sie?",
        "en": "I'll gladly record your request about your data. What phone number or e-mail "
        "address can we reach you on?",
    },
    "dsar_recorded": {
        "de": "Ich habe Ihre Anfrage aufgenommen: {kind}. Wir prüfen zunächst Ihre "
        "Identität und melden uns spätestens innerhalb eines Monats. Kann ich sonst noch "
        "etwas für Sie tun?",
        "en": "I've recorded your request: {kind}. We'll first verify your identity "
        "and get back to you within one month at the latest. Is there anything else I can "
        "do for you?",
    },
    "choose_service_first": {
        "de": "Für welche Leistung soll der Termin sein?",
        "en": "Which service is the appointment for?",
    },
}

DSAR_KIND_WORDS: dict[str, dict[Language, str]] = {
    "access": {"de": "Auskunft über Ihre Daten", "en": "access to your data"},
    "rectification": {"de": "Berichtigung Ihrer Daten", "en": "correction of your data"},
    "erasure": {"de": "Löschung Ihrer Daten", "en": "deletion of your data"},
    "restriction": {"de": "Einschränkung der Verarbeitung Ihrer Daten", "en": "restriction of processing"},
    "objection": {
        "de": "Widerspruch gegen die Verarbeitung Ihrer Daten",
        "en": "objection to the processing",
    },
    "portability": {"de": "Herausgabe Ihrer Daten", "en": "a portable copy of your data"},
}


def say(key: str, language: Language, **values: str) -> str:
    return PHRASES[key][language].format(**values)
