"""Telegram handlers: subscriber, agent, admin."""
