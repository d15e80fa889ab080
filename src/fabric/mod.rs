//! Fabric core: the compiled lab and the one decision function shared by the data plane and
//! `vpclab explain`. No I/O, no clock.
