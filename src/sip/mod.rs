//! SIP, sans-IO: building OPTIONS, parsing responses, stream framing and the
//! non-INVITE client transaction. Nothing here touches a socket or reads a clock.
