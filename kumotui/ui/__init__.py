"""The Textual face of kumotui: app, screens, widgets and one stylesheet.

Everything here renders what the core returns; nothing here decides what a
value should be or how it is written.
"""
