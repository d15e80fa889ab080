//! Fabric core: the compiled lab and the one decision function shared by the data plane and
//! `vpclab explain`. No I/O, no clock.

mod compiled;
mod decide;
mod explain;
mod verdict;

pub use compiled::{Compiled, CompiledRoute, RouteRef};
pub use decide::decide;
pub use explain::{explain, probe_key, Explanation, Leg};
pub use verdict::{DropCode, Hop, Outcome, Trace};
