"""Every place frames go besides the WebRTC viewers: NDI, Janus, recordings, replay."""
