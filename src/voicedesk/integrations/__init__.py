"""Outbound messages: SMS (Twilio Messages API), e-mail (SMTP) with .ics invites.

Each sender declares the processor it hands personal data to (``processors.Processor``);
the privacy registry is derived from those declarations.
"""
