//! decode_frames tests
