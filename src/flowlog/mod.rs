//! Flow-log layer (pure, beside the fabric): what the data plane observed on each ENI becomes
//! AWS VPC Flow Log records (aws-rules.md §6). `observe(now, ..)` and `flush(now)` take the time
//! as Unix seconds, so tests run on a virtual clock; only `files` (writing and reading the
//! delivered files) and `follow` (reading the streams as they grow) touch the disk.

pub mod aggregate;
pub mod analysis;
pub mod files;
pub mod follow;
pub mod observation;
pub mod record;

pub use aggregate::{Aggregator, Batch};
pub use analysis::{
    parse_header, parse_line, port_scans, top_talkers, LogFilter, ParsedRecord, Scan,
};
pub use files::{read_log_file, s3_key, write_batch};
pub use follow::{Follower, StreamLine};
pub use observation::{Direction, Observation};
pub use record::{
    header_line, logged_interfaces, nat_gateway_interface_id, Action, EniInfo, Flow, FlowRecord,
    LogStatus,
};
