"""The browser console: the page that controls a device through the relay (docs/console.md)."""
