"""Composition root helpers shared by ``create_app`` and the CLI: settings → vault → engines."""

from __future__ import annotations

from voicedesk.appointments.confirmations import Senders
from voicedesk.clock import Clock, SystemClock
from voicedesk.config import Settings
from voicedesk.integrations.email import SmtpEmail
from voicedesk.integrations.sms import DEFAULT_BASE_URL, TwilioSms
from voicedesk.privacy.restore import replay_erasure_ledger
from voicedesk.store.vault import Vault


async def open_vault(
    settings: Settings, *, clock: Clock | None = None, run_migrations: bool = True, replay_ledger: bool = True
) -> Vault:
    """Open the store for ``settings``: creates the data dir, checks key and database."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    kek = settings.load_master_key()
    vault = await Vault.open(
        db_url=settings.db_url, keys_url=settings.keys_url, kek=kek, blob_dir=settings.blob_dir,
        clock=clock or SystemClock(), db_schema=settings.database_schema,
        keys_schema=settings.keystore_schema if settings.keys_url.startswith("postgresql") else None,
        run_migrations=run_migrations,
    )
    if replay_ledger and run_migrations:
        # A restored data backup must never make an erased person readable again.
        await replay_erasure_ledger(vault)
    return vault


def build_senders(settings: Settings) -> Senders:
    """SMS through Twilio and e-mail through the configured SMTP relay; unset means switched off."""
    sms = None
    token = settings.twilio_auth_token
    if settings.twilio_account_sid and token is not None and settings.twilio_sms_from:
        sms = TwilioSms(account_sid=settings.twilio_account_sid, auth_token=token.get_secret_value(),
                        sender=settings.twilio_sms_from, region=settings.twilio_region, edge=settings.twilio_edge,
                        base_url=settings.twilio_api_base or DEFAULT_BASE_URL)
    email = None
    if settings.smtp_host and settings.smtp_from:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        email = SmtpEmail(host=settings.smtp_host, sender=settings.smtp_from, port=settings.smtp_port,
                          security=settings.smtp_security, user=settings.smtp_user, password=password)
    return Senders(sms=sms, email=email, organizer_email=settings.smtp_from)
