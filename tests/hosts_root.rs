//! Tier 3: what runs inside hosts, as root: the VPC's DNS resolver and the instance metadata
//! service asked by real clients, and real OpenSSH through a bastion.

#[macro_use]
mod common;

use common::*;

#[test]
fn dns_resolver_and_instance_metadata_answer_real_clients() {
    require_root!();
    let lab = "t-dns";
    // internet-nat with web1 at a known address and a flow log on all of vpc a.
    let edit = |dns_b: &str| {
        let dns_b = dns_b.to_string();
        move |s: String| {
            s.replace(
                "web1:  { subnet: public,",
                "web1:  { subnet: public, private_ip: 10.0.0.10,",
            )
            .replace(
                "    internet_gateway: true\n",
                "    internet_gateway: true\n    flow_logs:\n      a-all: { resource: vpc:a, traffic: ALL, aggregation_interval: 1 }\n",
            )
            .replace(
                "    cidr: 10.1.0.0/16\n",
                &format!("    cidr: 10.1.0.0/16\n    dns: {dns_b}\n"),
            )
        }
    };
    let file = variant("internet-nat.yaml", lab, edit("true"));
    let _guard = up(&file, lab);
    let run = |host: &str, cmd: &[&str]| {
        let out = exec(lab, host, cmd);
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("{host}$ {} -> {said}", cmd.join(" "));
        said
    };

    // Instances ask their VPC's resolver, with the region's search domain.
    let resolv = run("app1", &["cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains("nameserver 10.0.0.2\nsearch ec2.internal\n"),
        "{resolv}"
    );
    assert!(!run("example", &["cat", "/etc/resolv.conf"]).contains("nameserver"));

    // Real dig: host names, private DNS names at both addresses, internet names, NXDOMAIN.
    let dig = |host: &str, args: &[&str]| {
        let mut cmd = vec!["dig", "+short", "+time=2", "+tries=2"];
        cmd.extend_from_slice(args);
        run(host, &cmd)
    };
    assert_eq!(dig("app1", &["@10.0.0.2", "web1"]), "10.0.0.10");
    assert_eq!(
        dig("app1", &["@169.254.169.253", "ip-10-0-0-10.ec2.internal"]),
        "10.0.0.10"
    );
    assert_eq!(dig("app1", &["example.com"]), "198.51.100.10");
    assert_eq!(dig("peer1", &["IP-10-0-0-10.EC2.internal"]), "10.0.0.10");
    let nx = run("app1", &["dig", "+time=2", "nothing.example"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    let aaaa = run("app1", &["dig", "+time=2", "web1", "AAAA"]);
    assert!(
        aaaa.contains("status: NOERROR") && aaaa.contains("ANSWER: 0"),
        "{aaaa}"
    );
    // glibc through resolv.conf: the search domain completes the short name.
    let getent = run("app1", &["getent", "hosts", "ip-10-0-0-10"]);
    assert!(getent.starts_with("10.0.0.10"), "{getent}");
    let curl = run(
        "app1",
        &["curl", "-s", "--max-time", "5", "http://example.com/"],
    );
    assert_eq!(curl, "hello from example");

    // The metadata service, from inside each instance.
    let imds = |host: &str, path: &str| {
        let url = format!("http://169.254.169.254/latest/meta-data/{path}");
        run(host, &["curl", "-s", "--max-time", "5", &url])
    };
    assert_eq!(imds("web1", "local-ipv4"), "10.0.0.10");
    let id = imds("web1", "instance-id");
    assert!(
        id.len() == 19 && id.starts_with("i-") && id[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_ne!(id, imds("app1", "instance-id"));
    assert_eq!(imds("web1", "hostname"), "ip-10-0-0-10.ec2.internal");
    let public = imds("web1", "public-ipv4");
    assert!(public.starts_with("203.0.113."), "{public}");
    let public_name = imds("web1", "public-hostname");
    assert_eq!(
        public_name,
        format!("ec2-{}.compute-1.amazonaws.com", public.replace('.', "-"))
    );
    let status = |host: &str, url: &str, header: &str| {
        run(
            host,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                header,
                url,
            ],
        )
    };
    let nopub = "http://169.254.169.254/latest/meta-data/public-ipv4";
    assert_eq!(status("app1", nopub, "X-Nothing: 1"), "404");
    // IMDSv2: a token from PUT; with it GETs work, with a wrong one they get 401.
    let token = run(
        "web1",
        &[
            "curl",
            "-s",
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            "http://169.254.169.254/latest/api/token",
        ],
    );
    assert!(token.len() >= 32, "{token}");
    let local = "http://169.254.169.254/latest/meta-data/local-ipv4";
    let with = format!("X-aws-ec2-metadata-token: {token}");
    let v2 = run("web1", &["curl", "-s", "-H", &with, local]);
    assert_eq!(v2, "10.0.0.10");
    let wrong = "X-aws-ec2-metadata-token: wrong";
    assert_eq!(status("web1", local, wrong), "401");
    // The service on 169.254.169.254:80 and web1's own http:80 share the port.
    let own = run(
        "web1",
        &["curl", "-s", "--max-time", "5", "http://10.0.0.10/"],
    );
    assert_eq!(own, "hello from web1");

    // Split horizon: the public name is the private address inside the VPC, public outside.
    assert_eq!(dig("app1", &[&public_name]), "10.0.0.10");
    assert_eq!(dig("peer1", &[&public_name]), public);

    // Neither DNS nor metadata shows in the flow log, which did record the curl.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let logs = text(&vpclab(&["logs", "--lab", lab]));
    assert!(logs.contains(" 198.51.100.10 "), "{logs}");
    for quiet in [" 10.0.0.2 ", " 169.254.169.253 ", " 169.254.169.254 "] {
        assert!(!logs.contains(quiet), "{quiet} logged: {logs}");
    }

    // DNS off in vpc b: no nameserver, and nothing answers at its base + 2.
    let off = variant("internet-nat.yaml", lab, edit("false"));
    let out = vpclab(&["up", off.to_str().unwrap()]);
    assert!(out.status.success(), "re-up: {}", text(&out));
    assert!(!run("peer1", &["cat", "/etc/resolv.conf"]).contains("nameserver"));
    let silent = run(
        "peer1",
        &["dig", "+time=1", "+tries=1", "@10.1.0.2", "web1"],
    );
    assert!(silent.contains("timed out"), "{silent}");
    assert_eq!(dig("app1", &["@10.0.0.2", "peer1"]), "10.1.1.4");
    down_clean(lab);
}

#[test]
fn ssh_reaches_the_private_instance_only_through_the_bastion() {
    require_root!();
    let lab = "t-bastion";
    let file = variant("bastion.yaml", lab, |t| t);
    let _guard = up(&file, lab);
    // The bastion has the pool's first public IP; app1 has only its private address.
    let (bastion_public, app1) = ("203.0.113.10", "10.0.1.10");
    let status = text(&vpclab(&["status", lab]));
    assert!(status.contains(bastion_public), "{status}");
    // Real OpenSSH on both ends, every command bounded in time.
    let ssh = |from: &str, args: &[&str]| {
        let mut all = vec!["timeout", "30", "ssh"];
        all.extend(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]);
        all.extend(args);
        exec(lab, from, &all)
    };
    let jump = format!("root@{bastion_public}");
    let target = format!("root@{app1}");
    let by_address = ssh(
        "admin",
        &[
            "-J", &jump, &target, "ip", "-4", "-o", "addr", "show", "eth0",
        ],
    );
    println!("admin -J {jump} {target}: {}", text(&by_address));
    assert!(by_address.status.success(), "{}", text(&by_address));
    assert!(
        text(&by_address).contains(&format!("inet {app1}/24")),
        "{}",
        text(&by_address)
    );
    // The names of the admin's ssh config: `bastion` is its public IP from the internet.
    let by_name = ssh(
        "admin",
        &["-J", "bastion", "app1", "ip", "-4", "-o", "addr"],
    );
    println!("admin -J bastion app1: {}", text(&by_name));
    assert!(
        text(&by_name).contains(&format!("inet {app1}/24")),
        "{}",
        text(&by_name)
    );
    // Straight to the private address: not routable from the internet; ssh itself gives up
    // (exit 255), the command never runs.
    let direct = ssh("admin", &[&target, "true"]);
    println!("admin -> {target}: {}", text(&direct));
    assert_eq!(direct.status.code(), Some(255), "{}", text(&direct));
    assert!(text(&direct).contains("port 22"), "{}", text(&direct));
    // Anyone but the admin: the bastion's security group drops it.
    let stranger = ssh("other", &[&jump, "true"]);
    println!("other -> {jump}: {}", text(&stranger));
    assert_eq!(stranger.status.code(), Some(255), "{}", text(&stranger));
    assert!(text(&stranger).contains("port 22"), "{}", text(&stranger));
    down_clean(lab);
    // No sshd of the lab survives it.
    let marker = format!("/run/vpclab/{lab}/");
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("sshd") && c.contains(&marker))
        .collect();
    assert_eq!(survivors, Vec::<String>::new());
}
