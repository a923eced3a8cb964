"""Notifications (issue #18 item 3): channels as plugins, subscriptions, a delivery queue.

See docs/notifications.md. Nothing here imports api/: the API calls in with a Principal.
"""
