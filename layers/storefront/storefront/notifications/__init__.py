"""Notifications: the emails that tell customers what became of their orders."""
