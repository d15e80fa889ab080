//! BGP-4 for the virtual private gateway: the AWS side of each VPN tunnel's eBGP session with
//! the customer gateway (BIRD in the site's router). `session` is the protocol without I/O
//! (OPEN, KEEPALIVE, UPDATE, NOTIFICATION; what was learned), `speaker` runs sessions over
//! real TCP inside the gateway's namespace, and `rib` chooses among what every session
//! learned with AWS's preferences and says what each session should advertise.

pub mod rib;
pub mod session;
pub mod speaker;

pub use rib::{Advertised, LearnedRoute, Rib};
pub use session::{Session, SessionEvent};
