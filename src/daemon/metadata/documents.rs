//! The documents of the instance metadata service: what the lab says about one instance,
//! under the paths AWS serves it (`/latest/meta-data/...`), folders listing their entries.
//! Pure: read from the lab as it is now.

use crate::scenario::{aws_id, InstanceId, Lab};

/// The document at `path` for `instance` (a listing for a folder), or None (404).
pub(super) fn document(lab: &Lab, instance: InstanceId, path: &str) -> Option<String> {
    let i = &lab.instances[instance];
    let vpc = &lab.vpcs[i.vpc];
    let subnet = &lab.subnets[i.subnet];
    let public = i.public_ip.map(|p| p.addr.to_string());
    let public_name = lab.public_dns_name(instance);
    let mac = {
        let m = crate::fabric::mirror::mac(i.private_ip.into());
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    };
    let groups = || i.security_groups.iter().map(|&g| &lab.security_groups[g]);
    let group_names = || {
        let names: Vec<&str> = groups().map(|g| g.name.as_str()).collect();
        names.join("\n")
    };
    let lines = |items: &[&str]| items.join("\n");
    // Folders list their entries; what a public IP brings is listed only when there is one.
    let optional = |name: &'static str, present: bool| present.then_some(name);

    let path = path.trim_end_matches('/');
    let path = match path.strip_prefix("/latest") {
        Some(rest) => rest,
        None if path.is_empty() => return Some("latest".to_string()),
        None => return None,
    };
    let Some(key) = path.strip_prefix("/meta-data") else {
        return (path.is_empty()).then(|| "meta-data".to_string());
    };
    let key = key.trim_start_matches('/');
    let eni = format!("network/interfaces/macs/{mac}");
    let value = match key {
        "" => {
            let entries: Vec<&str> = [
                Some("hostname"),
                Some("instance-id"),
                Some("local-hostname"),
                Some("local-ipv4"),
                Some("mac"),
                Some("network/"),
                Some("placement/"),
                optional("public-hostname", public.is_some()),
                optional("public-ipv4", public.is_some()),
                Some("security-groups"),
            ]
            .into_iter()
            .flatten()
            .collect();
            lines(&entries)
        }
        "hostname" | "local-hostname" => lab.private_dns_name(instance),
        "instance-id" => aws_id("i", &lab.name, &i.name),
        "local-ipv4" => i.private_ip.to_string(),
        "mac" => mac.clone(),
        "public-hostname" => public_name?,
        "public-ipv4" => public?,
        "security-groups" => group_names(),
        "placement" => "availability-zone\nregion".to_string(),
        "placement/availability-zone" => subnet.az.clone(),
        "placement/region" => vpc.region.clone(),
        "network" => "interfaces/".to_string(),
        "network/interfaces" => "macs/".to_string(),
        "network/interfaces/macs" => format!("{mac}/"),
        _ => {
            let field = key.strip_prefix(eni.as_str())?.trim_start_matches('/');
            match field {
                "" => {
                    let entries: Vec<&str> = [
                        Some("device-number"),
                        Some("interface-id"),
                        Some("local-hostname"),
                        Some("local-ipv4s"),
                        Some("mac"),
                        Some("owner-id"),
                        optional("public-hostname", public.is_some()),
                        optional("public-ipv4s", public.is_some()),
                        Some("security-group-ids"),
                        Some("security-groups"),
                        Some("subnet-id"),
                        Some("subnet-ipv4-cidr-block"),
                        Some("vpc-id"),
                        Some("vpc-ipv4-cidr-block"),
                        Some("vpc-ipv4-cidr-blocks"),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    lines(&entries)
                }
                "device-number" => "0".to_string(),
                "interface-id" => aws_id("eni", &lab.name, &i.name),
                "local-hostname" => lab.private_dns_name(instance),
                "local-ipv4s" => i.private_ip.to_string(),
                "mac" => mac.clone(),
                "owner-id" => vpc.account.clone(),
                "public-hostname" => public_name?,
                "public-ipv4s" => public?,
                "security-group-ids" => groups()
                    .map(|g| sg_id(lab, g.vpc, &g.name))
                    .collect::<Vec<_>>()
                    .join("\n"),
                "security-groups" => group_names(),
                "subnet-id" => aws_id("subnet", &lab.name, &subnet.name),
                "subnet-ipv4-cidr-block" => subnet.cidr.to_string(),
                "vpc-id" => aws_id("vpc", &lab.name, &vpc.name),
                "vpc-ipv4-cidr-block" => vpc.cidrs.first()?.to_string(),
                "vpc-ipv4-cidr-blocks" => vpc
                    .cidrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => return None,
            }
        }
    };
    Some(value)
}

/// A security group's id: every VPC has a group named `default`, so the VPC is part of it.
fn sg_id(lab: &Lab, vpc: usize, name: &str) -> String {
    aws_id("sg", &lab.name, &format!("{}/{name}", lab.vpcs[vpc].name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    const LAB: &str = r#"
name: meta
defaults: { region: us-east-1 }
internet:
  public_pool: 203.0.113.0/24
vpcs:
  a:
    cidr: [10.0.0.0/16, 10.50.0.0/16]
    account: "111122223333"
    internet_gateway: true
    subnets:
      pub: { cidr: 10.0.0.0/24, az: us-east-1b, route_table: pub-rt }
    route_tables:
      pub-rt: { routes: [{ destination: 0.0.0.0/0, target: igw:a }] }
    security_groups:
      web: { ingress: [{ protocol: tcp, ports: 80, source: 0.0.0.0/0 }] }
    instances:
      web1: { subnet: pub, private_ip: 10.0.0.10, public_ip: true, security_groups: [web, default] }
      app1: { subnet: pub, private_ip: 10.0.0.11 }
"#;

    fn lab() -> Lab {
        load_str(LAB, "meta.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn get(lab: &Lab, name: &str, path: &str) -> Option<String> {
        document(lab, lab.instance_by_name(name).unwrap(), path)
    }
    #[test]
    fn an_instance_reads_what_it_is() {
        let lab = lab();
        let public = lab.instances[0].public_ip.unwrap().addr.to_string();
        let id = get(&lab, "web1", "/latest/meta-data/instance-id").unwrap();
        assert!(id.starts_with("i-") && id.len() == 19, "{id}");
        assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(id, aws_id("i", "meta", "web1"));
        let at = |path: &str| get(&lab, "web1", path);
        assert_eq!(
            at("/latest/meta-data/local-ipv4").as_deref(),
            Some("10.0.0.10")
        );
        assert_eq!(at("/latest/meta-data/public-ipv4"), Some(public.clone()));
        assert_eq!(
            at("/latest/meta-data/mac").as_deref(),
            Some("02:00:0a:00:00:0a")
        );
        assert_eq!(
            at("/latest/meta-data/hostname").as_deref(),
            Some("ip-10-0-0-10.ec2.internal")
        );
        assert_eq!(
            at("/latest/meta-data/public-hostname"),
            Some(format!(
                "ec2-{}.compute-1.amazonaws.com",
                public.replace('.', "-")
            ))
        );
        assert_eq!(
            at("/latest/meta-data/placement/availability-zone").as_deref(),
            Some("us-east-1b")
        );
        assert_eq!(
            at("/latest/meta-data/placement/region").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            at("/latest/meta-data/security-groups").as_deref(),
            Some("web\ndefault")
        );
        let eni = "/latest/meta-data/network/interfaces/macs/02:00:0a:00:00:0a";
        assert_eq!(
            at(&format!("{eni}/vpc-id")),
            Some(aws_id("vpc", "meta", "a"))
        );
        assert_eq!(
            at(&format!("{eni}/subnet-id")),
            Some(aws_id("subnet", "meta", "pub"))
        );
        assert_eq!(
            at(&format!("{eni}/owner-id")).as_deref(),
            Some("111122223333")
        );
        assert_eq!(
            at(&format!("{eni}/vpc-ipv4-cidr-blocks")).as_deref(),
            Some("10.0.0.0/16\n10.50.0.0/16")
        );
        let ids = at(&format!("{eni}/security-group-ids")).unwrap();
        assert_eq!(ids.lines().count(), 2);
        assert!(ids.lines().all(|l| l.starts_with("sg-0")), "{ids}");
        assert_eq!(
            at("/latest/meta-data/network/interfaces/macs/").as_deref(),
            Some("02:00:0a:00:00:0a/")
        );
    }

    #[test]
    fn listings_and_what_is_missing() {
        let lab = lab();
        let index = get(&lab, "web1", "/latest/meta-data/").unwrap();
        for entry in [
            "instance-id",
            "local-ipv4",
            "public-ipv4",
            "placement/",
            "mac",
        ] {
            assert!(index.lines().any(|l| l == entry), "{entry} in {index}");
        }
        assert_eq!(get(&lab, "web1", "/latest/meta-data"), Some(index));
        // No public IP: not listed, and 404 as AWS answers.
        let index = get(&lab, "app1", "/latest/meta-data/").unwrap();
        assert!(!index.contains("public"), "{index}");
        assert_eq!(get(&lab, "app1", "/latest/meta-data/public-ipv4"), None);
        assert_eq!(get(&lab, "app1", "/latest/meta-data/public-hostname"), None);
        assert_eq!(get(&lab, "app1", "/latest/meta-data/nothing"), None);
        assert_eq!(get(&lab, "app1", "/latest/user-data"), None);
        assert_eq!(get(&lab, "app1", "/other").as_deref(), None);
        assert_eq!(get(&lab, "app1", "/").as_deref(), Some("latest"));
        assert_eq!(get(&lab, "app1", "/latest/").as_deref(), Some("meta-data"));
    }
}
