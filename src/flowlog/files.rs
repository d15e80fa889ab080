//! Flow-log layer: delivery to disk, laid out as AWS does. S3: one gzip file per batch at
//! `AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/ACCOUNT_vpcflowlogs_REGION_FLID_YYYYMMDDTHHmmZ_HASH.log.gz`
//! starting with a header line of field names. CloudWatch Logs: one plain stream per ENI,
//! `cloudwatch/FLOWLOGNAME/eni-…-all.log`, appended, no header. Files are written whole
//! (temporary name, then rename) so a reader never sees half of one.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::aggregate::Batch;
use super::record::header_line;
use crate::scenario::{aws_id, FlowLog, FlowLogResource, Lab, VpcId};

/// A UTC time split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    /// Howard Hinnant's `civil_from_days`, for Unix seconds.
    pub fn from_unix(secs: u64) -> Utc {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// The S3 key of a flow-log file delivered at `time` (Unix seconds).
pub fn s3_key(account: &str, region: &str, flow_log_id: &str, time: u64, hash: &str) -> String {
    let t = Utc::from_unix(time);
    format!(
        "AWSLogs/{account}/vpcflowlogs/{region}/{:04}/{:02}/{:02}/\
         {account}_vpcflowlogs_{region}_{flow_log_id}_{:04}{:02}{:02}T{:02}{:02}Z_{hash}.log.gz",
        t.year, t.month, t.day, t.year, t.month, t.day, t.hour, t.minute
    )
}

/// The VPC whose account and region own a flow log's files.
pub fn owner_vpc(lab: &Lab, fl: &FlowLog) -> VpcId {
    match fl.resource {
        FlowLogResource::Vpc(v) => v,
        FlowLogResource::Subnet(s) => lab.subnets[s].vpc,
        FlowLogResource::Eni(i) => lab.instances[i].vpc,
        FlowLogResource::NatGateway(g) => lab.nat_gateways[g].vpc,
    }
}

/// Writes one batch: an S3-style gzip file and the CloudWatch-style streams of its ENIs.
/// Returns the files written (the S3 file first). An empty batch writes nothing.
pub fn write_batch(out_dir: &Path, lab: &Lab, batch: &Batch) -> io::Result<Vec<PathBuf>> {
    let Some(fl) = lab.flow_logs.get(batch.flow_log) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "batch names flow log #{} but the lab has {}",
                batch.flow_log,
                lab.flow_logs.len()
            ),
        ));
    };
    if batch.records.is_empty() {
        return Ok(Vec::new());
    }
    let vpc = &lab.vpcs[owner_vpc(lab, fl)];
    let fl_id = aws_id("fl", &lab.name, &fl.name);
    let mut text = header_line(&fl.fields);
    text.push('\n');
    let mut streams: BTreeMap<&str, String> = BTreeMap::new();
    for r in &batch.records {
        let line = r.render(&fl.fields);
        text.push_str(&line);
        text.push('\n');
        let stream = streams.entry(r.eni.interface_id.as_str()).or_default();
        stream.push_str(&line);
        stream.push('\n');
    }

    let mut written = Vec::with_capacity(1 + streams.len());
    let mut salt = 0u32;
    let path = loop {
        let hash = file_hash(&fl_id, batch.window_start, batch.window_end, salt);
        let key = s3_key(&vpc.account, &vpc.region, &fl_id, batch.window_end, &hash);
        let path = out_dir.join(key);
        if !path.exists() {
            break path;
        }
        salt += 1;
    };
    let dir = path.parent().unwrap_or(out_dir);
    fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
    let tmp = path.with_extension("gz.tmp");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(text.as_bytes())?;
    fs::write(&tmp, gz.finish()?)
        .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", tmp.display())))?;
    fs::rename(&tmp, &path)?;
    written.push(path);

    let cw_dir = out_dir.join("cloudwatch").join(&fl.name);
    fs::create_dir_all(&cw_dir)
        .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", cw_dir.display())))?;
    for (eni, lines) in streams {
        let path = cw_dir.join(format!("{eni}-all.log"));
        let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
        f.write_all(lines.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// The text of an S3-style flow-log file (header line first).
pub fn read_log_file(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    GzDecoder::new(fs::File::open(path)?).read_to_string(&mut text)?;
    Ok(text)
}

/// 8 hex digits naming one file, from what makes it unique.
fn file_hash(fl_id: &str, start: u64, end: u64, salt: u32) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let bytes = fl_id
        .bytes()
        .chain(start.to_le_bytes())
        .chain(end.to_le_bytes())
        .chain(salt.to_le_bytes());
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let t = Utc::from_unix(1_700_000_000);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2023, 11, 14, 22, 13, 20)
        );
        assert_eq!(Utc::from_unix(0).year, 1970);
        let leap = Utc::from_unix(951_782_400); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        let eoy = Utc::from_unix(1_704_067_199); // 2023-12-31T23:59:59
        assert_eq!(
            (eoy.year, eoy.month, eoy.day, eoy.hour, eoy.minute),
            (2023, 12, 31, 23, 59)
        );
    }

    #[test]
    fn s3_layout() {
        assert_eq!(
            s3_key(
                "123456789012",
                "us-east-1",
                "fl-0abc",
                1_700_000_000,
                "0badcafe"
            ),
            "AWSLogs/123456789012/vpcflowlogs/us-east-1/2023/11/14/\
             123456789012_vpcflowlogs_us-east-1_fl-0abc_20231114T2213Z_0badcafe.log.gz"
        );
        let h = file_hash("fl-0abc", 0, 60, 0);
        assert_eq!(h.len(), 8);
        assert_ne!(h, file_hash("fl-0abc", 0, 60, 1));
    }
}
