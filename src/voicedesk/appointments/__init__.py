"""Appointments: the database-backed dialogue tools, staff edits, confirmations and reminders."""
