//! Sigma detection over Shaobing events.
