"""Reminders to end customers: the day before an appointment, an SMS to the end customer's
mobile at the configured hour (the subscriber's wall clock), in their language where known;
a reply 1/2 (or yes/no in en, el, ru, zh) confirms or cancels, and the subscriber is told.

`desk.Reminders` schedules and sends (a leader's round, `run(now)`) and takes the answers;
`inbound.ReminderInbound` puts the answers before the command desk; `answers` reads a
reply; `words` says everything the end customer and the subscriber read.
"""
