//! Linux plumbing: named network namespaces, TUN devices, addresses, routes, per-host files.
//! Knows nothing about AWS.
