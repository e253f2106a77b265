"""Webhooks: rules (which events, once per episode), signing, URL checks and sending; no Flask, no Redis."""
