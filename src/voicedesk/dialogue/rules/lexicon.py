"""Words that reveal what a caller wants, per language.

Each cue is a regular expression matched against the normalised utterance (lower case,
punctuation replaced by spaces, single spaces, padded with one space on each side), so
``r" ja "`` matches the word "ja" and nothing inside "jahr".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from voicedesk.domain.profile import Language

# fmt: off
Cues = Mapping[Language, tuple[str, ...]]

_PUNCT = re.compile(r"[^\w@+ ]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, strip punctuation (keeping ``@`` and ``+``), pad with spaces."""
    cleaned = _PUNCT.sub(" ", text.lower().replace("’", "'").replace("'", ""))
    return " " + _SPACES.sub(" ", cleaned).strip() + " "


def matches(norm: str, cues: Cues, language: Language) -> bool:
    return any(re.search(c, norm) for c in cues[language])


YES: Cues = {
    "de": (r" ja ", r" jawohl ", r" jep ", r" genau ", r" richtig ", r" stimmt ", r" passt ", r" gerne? ",
           r" okay ", r" ok ", r" einverstanden ", r" perfekt ", r" super ", r" klar ", r" in ordnung ",
           r" machen wir ", r" sehr gut ", r" prima ", r" korrekt ", r" bitte ja ", r" gut "),
    "en": (r" yes ", r" yeah ", r" yep ", r" yup ", r" sure ", r" correct ", r" right ", r" ok ", r" okay ",
           r" fine ", r" perfect ", r" sounds good ", r" that works ", r" great ", r" please do ",
           r" absolutely ", r" of course ", r" go ahead ", r" good "),
}
NO: Cues = {
    "de": (r" nein ", r" nee ", r" ne ", r" nö ", r" lieber nicht ", r" passt nicht ", r" geht nicht ",
           r" passt mir nicht ", r" geht mir nicht ", r" falsch ", r" stimmt nicht ", r" nicht richtig ",
           r" kann ich nicht ", r" keine zeit ", r" eher nicht ", r" lieber ", r" andere[nrs]? "),
    "en": (r" no ", r" nope ", r" nah ", r" not ", r" doesnt work ", r" dont ", r" wrong ", r" rather ",
           r" cant ", r" cannot ", r" another ", r" different ", r" instead ", r" isnt "),
}
REPEAT: Cues = {
    "de": (r"^ wie bitte ", r" nochmal ", r" noch mal ", r" noch einmal ", r" wiederholen ",
           r" nicht verstanden ", r"^ was haben sie gesagt ", r"^ bitte was ", r"^ wie $", r"^ was $"),
    "en": (r"^ sorry $", r"^ pardon ", r" say that again ", r" repeat ", r" come again ", r"^ what $",
           r" didnt (catch|get|understand) ", r" one more time ", r"^ excuse me $", r"^ huh $"),
}
GOODBYE: Cues = {
    "de": (r" tschüss ", r" tschüs ", r" auf wiederhören ", r" auf wiedersehen ", r" das wars ",
           r" das war es ", r" das wäre alles ", r" das ist alles ", r" nichts mehr ", r" ciao ",
           r" schönen tag ", r" wiederhören ", r" ich lege auf ", r" sonst nichts ", r" nichts weiter "),
    "en": (r" bye ", r" goodbye ", r" good bye ", r" thats all ", r" thats it ", r" nothing else ",
           r" have a (nice|good|great) day ", r" hang up ", r" im done ", r" no thats everything ",
           r" that will be all ", r" thatll be all "),
}
THANKS_ONLY: Cues = {
    "de": (r"^ (nein )?(danke|vielen dank|dankeschön)( schön| sehr)?( das wars)? $",),
    "en": (r"^ (no )?(thanks|thank you)( very much| so much)?( thats all)? $",),
}
BOOK: Cues = {
    "de": (r" termin", r" vereinbaren ", r" buchen ", r" anmelden ", r" vorbeikommen ", r" reservieren ",
           r" einen platz ", r" kommen ", r" vorbei "),
    "en": (r" appointment", r" book ", r" booking ", r" schedule ", r" reserve ", r" come in ",
           r" slot ", r" see the doctor ", r" get a "),
}
CANCEL: Cues = {
    "de": (r" absagen ", r" stornieren ", r" streichen ", r" absage ", r" nicht kommen ",
           r" löschen sie (den|meinen) termin ", r" termin (löschen|canceln) ", r" canceln "),
    "en": (r" cancel", r" call off ", r" cant make it ", r" cannot make it ", r" wont make it ",
           r" cant come ", r" drop my appointment "),
}
RESCHEDULE: Cues = {
    "de": (r" verschieben ", r" verlegen ", r" umbuchen ", r" anderen termin ", r" neuen termin statt ",
           r" termin ändern ", r" umlegen ", r" später legen ", r" früher legen "),
    "en": (r" reschedule ", r" move (my|the) appointment ", r" change (my|the) appointment ", r" postpone ",
           r" move it ", r" different time for my ", r" rebook "),
}
MESSAGE: Cues = {
    "de": (r" nachricht ", r" rückruf ", r" zurückrufen ", r" ausrichten ", r" bescheid geben ",
           r" hinterlassen ", r" notieren sie ", r" melden sich ", r" mich anrufen ", r" zurückruf ",
           r" zurückgerufen ", r" richten sie (bitte |ihr |ihm )?aus ", r" mich zurück "),
    "en": (r" message ", r" call me back ", r" callback ", r" call back ", r" let (him|her|them) know ",
           r" pass on ", r" leave a note ", r" get back to me "),
}
HUMAN: Cues = {
    "de": (r" mitarbeiter", r" mensch", r" person ", r" jemanden sprechen ", r" jemand ",
           r" verbinden ", r" durchstellen ", r" weiterleiten ", r" empfang ", r" rezeption ",
           r" sprechstundenhilfe ", r" echte[nm]? ", r" kollegin ", r" kollegen ", r" chef ",
           r" mit (frau|herrn?|dr) \w+ sprechen ", r" persönlich sprechen ", r" operator "),
    "en": (r" human ", r" person ", r" someone ", r" somebody ", r" real ", r" staff ", r" receptionist ",
           r" operator ", r" transfer me ", r" put me through ", r" connect me ", r" talk to (a|the|your) ",
           r" speak (to|with) (a|the|your|someone) ", r" representative ", r" agent ", r" manager "),
}
DSAR: Cues = {
    "de": (r" meine daten ", r" meinen daten ", r" meiner daten ", r" daten über mich ", r" dsgvo ",
           r" datenauskunft ", r" personenbezogenen daten ", r" gespeicherten daten ", r" daten löschen ",
           r" daten berichtigen ", r" daten korrigieren ", r" auskunft über meine ", r" daten gespeichert ",
           r" welche daten ", r" über mich gespeichert "),
    "en": (r" my data ", r" personal data ", r" my information ", r" data you (have|hold|store) ",
           r" gdpr ", r" delete my (details|records|info|number) ", r" personal information ",
           r" subject access ", r" what do you (have|store|know) (on|about) me "),
}
DSAR_KINDS: Mapping[str, Cues] = {
    "erasure": {"de": (r" lösch", r" entfernen ", r" vergessen "),
                "en": (r" delet", r" eras", r" remove ", r" forget ")},
    "rectification": {"de": (r" berichtig", r" korrigier", r" falsch ", r" ändern ", r" richtigstellen "),
                      "en": (r" correct", r" rectif", r" wrong ", r" fix ", r" update ", r" change ")},
    "restriction": {"de": (r" einschränk", r" sperren "), "en": (r" restrict",)},
    "objection": {"de": (r" widersprech", r" widerspruch "), "en": (r" object",)},
    "portability": {"de": (r" übertrag", r" exportier", r" mitnehmen "), "en": (r" portab", r" export")},
    "access": {"de": (r" auskunft ", r" welche daten ", r" was haben sie ", r" einsicht", r" zeigen ",
                      r" gespeichert "),
               "en": (r" access ", r" what data ", r" copy of ", r" show me ", r" see (my|the) ",
                      r" what do you ", r" which data ")},
}
PRIVACY_NOTICE: Cues = {
    "de": (r" datenschutz ", r" datenschutzhinweis ", r" datenschutzerklärung "),
    "en": (r" privacy ", r" data protection "),
}
OPENING_HOURS: Cues = {
    "de": (r" öffnungszeit", r" geöffnet ", r" offen ", r" sprechzeit", r" wann haben sie ",
           r" (heute|morgen|noch|samstags?|sonntags?|sie|ihr) (auf|offen|geöffnet) ", r" wie lange ",
           r" bis wann ", r" ab wann ", r" wann (machen|haben) sie (auf|zu) "),
    "en": (r" opening hours ", r" open ", r" hours ", r" close ", r" closing ", r" when are you "),
}
ADDRESS: Cues = {
    "de": (r" adresse ", r" anschrift ", r" wo finde ich ", r" wo sind sie ", r" wo ist ", r" wie komme ",
           r" straße ", r" wo befinde", r" wo liegt ", r" anfahrt "),
    "en": (r" address ", r" where are you ", r" where is ", r" located ", r" location ", r" find you ",
           r" directions ", r" get to you "),
}
PRICES: Cues = {
    "de": (r" preis", r" kostet ", r" kosten ", r" was zahle ", r" wie teuer ", r" gebühr", r" euro "),
    "en": (r" price", r" cost", r" how much ", r" fee", r" charge ", r" expensive "),
}
# decisions the assistant must never take itself; always handed to a human.
ESCALATE: Mapping[str, Cues] = {
    "medical": {"de": (r" medikament", r" dosis ", r" dosierung ", r" tabletten? ", r" nebenwirkung",
                       r" diagnose ", r" befund", r" symptom", r" schmerzen ", r" krankschreib",
                       r" arbeitsunfähig", r" überweisung ", r" blutwerte ", r" laborwerte ", r" rezept "),
                "en": (r" medication ", r" medicine ", r" dose ", r" dosage ", r" pills? ", r" side effects? ",
                       r" diagnosis ", r" test results ", r" symptoms? ", r" pain ", r" sick note ",
                       r" prescription ", r" referral ", r" blood results? ")},
    "legal": {"de": (r" anwalt", r" rechtlich", r" klage", r" gericht", r" haftung", r" gewährleistung",
                     r" vertrag ", r" kündig"),
              "en": (r" lawyer ", r" attorney ", r" legal ", r" sue ", r" lawsuit ", r" court ", r" liability ",
                     r" warranty ", r" contract ")},
    "financial": {"de": (r" rechnung ", r" ratenzahlung", r" erstatt", r" geld zurück", r" kulanz",
                         r" mahnung", r" stundung", r" rabatt"),
                  "en": (r" invoice ", r" bill ", r" refund", r" money back ", r" payment plan ",
                         r" installments? ", r" discount ")},
    "complaint": {"de": (r" beschwer", r" unzufrieden", r" reklamation", r" reklamieren", r" unverschämt",
                         r" sauer ", r" verärgert ", r" ärgerlich "),
                  "en": (r" complain", r" complaint", r" unhappy ", r" dissatisfied ", r" unacceptable ",
                         r" furious ", r" angry ")},
}
EMERGENCY: Cues = {
    "de": (r" notfall ", r" notarzt ", r" brustschmerz", r" atemnot ", r" bewusstlos ", r" blutet stark ",
           r" herzinfarkt ", r" schlaganfall "),
    "en": (r" emergency ", r" chest pain ", r" cant breathe ", r" unconscious ", r" bleeding heavily ",
           r" heart attack ", r" stroke "),
}
# A message request that already says what it is about ("…, dass ich …", "… about my invoice").
REASON_GIVEN: Cues = {
    "de": (r" dass ", r" wegen ", r" weil ", r" ob ", r" bezüglich ", r" zwecks ", r" es geht um "),
    "en": (r" about ", r" that ", r" because ", r" regarding ", r" whether ", r" concerning ", r" its about "),
}
URGENT: Cues = {
    "de": (r" dringend", r" eilig", r" sofort ", r" so schnell wie möglich ", r" schnellstmöglich ",
           r" wichtig "),
    "en": (r" urgent", r" asap ", r" as soon as possible ", r" immediately ", r" right away ", r" important "),
}
RUDE: Cues = {
    "de": (r" scheiß", r" scheiss", r" idiot", r" blöd", r" dumm", r" verdammt", r" mist ", r" halt die klappe ",
           r" nervt? ", r" bescheuert", r" sinnlos "),
    "en": (r" stupid ", r" idiot", r" shit", r" damn", r" useless ", r" shut up ", r" dumb ", r" fuck",
           r" crap ", r" ridiculous "),
}
CALLER_NUMBER_OK: Cues = {
    "de": (r" diese nummer ", r" dieselbe ", r" die gleiche ", r" von der ich anrufe ", r" meine nummer ",
           r" unter dieser ", r" die nummer passt "),
    "en": (r" this number ", r" same number ", r" number im calling from ", r" this one ", r" that number "),
}
FIRST: Cues = {"de": (r" erste[nrms]? ", r" früher", r" eins "), "en": (r" first ", r" earlier ", r" one ")}
SECOND: Cues = {"de": (r" zweite[nrms]? ", r" später", r" letzte[nrms]? "),
                "en": (r" second ", r" later ", r" last ", r" other ")}
LATER_EARLIER: Cues = {"de": (r" später", r" früher"), "en": (r" later ", r" earlier ")}
EARLIER: Cues = {"de": (r" früher",), "en": (r" earlier ",)}
FILLERS: Cues = {
    "de": (r" äh ", r" ähm ", r" also ", r" ja ", r" gut ", r" okay ", r" hm+ ", r" gerne? ", r" bitte ",
           r" na "),
    "en": (r" uh ", r" um ", r" well ", r" yes ", r" ok ", r" okay ", r" so ", r" please ", r" hm+ ",
           r" sure "),
}
# fmt: on
