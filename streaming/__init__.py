"""WebRTC streaming of the live preview (aiortc). Arrives with the live kiosk."""
