//! One module per polled command.
