"""Call lists (campaigns): a subscriber's end customers called by an agent from Telegram,
one entry at a time (claimed atomically), the call placed agent first."""
