"""The app's screens: the tuning screen and the modals it opens."""
