"""WebRTC live preview (aiortc): ``preview`` renders a frame, ``track`` streams the rendered
frames back at the camera's pace, ``sessions`` answers each kiosk's offer and keeps its connection."""
