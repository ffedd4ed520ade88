//! What a connection takes from its route: the MSS it advertises, from the device's MTU.

/// IPv4 (20) + TCP (20) header bytes without options.
const HEADER_SIZE: u32 = 20 + 20;
/// `net.ipv4.route.min_adv_mss` (`ip_rt_min_advmss`): the floor of an advertised MSS.
const IP_RT_MIN_ADVMSS: u32 = 256;
/// `IPV4_MAX_PMTU`: an IPv4 datagram's largest size.
const IPV4_MAX_PMTU: u32 = 65535;

/// net/ipv4/route.c `ipv4_default_advmss`, the `dst_metric_advmss` of a route over a device
/// with MTU `mtu`: MTU − 40, at least `ip_rt_min_advmss`, at most 65535 − 40. A SYN
/// advertises it (`tcp_advertise_mss`) and the connection's `advmss` is it; a 1500-byte veth
/// gives 1460, loopback's 65536 gives 65495.
pub fn ipv4_default_advmss(mtu: u32) -> u16 {
    let advmss = mtu.saturating_sub(HEADER_SIZE).max(IP_RT_MIN_ADVMSS);
    advmss.min(IPV4_MAX_PMTU - HEADER_SIZE) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advmss_is_the_mtu_less_the_headers_within_linux_bounds() {
        assert_eq!(ipv4_default_advmss(1500), 1460);
        assert_eq!(ipv4_default_advmss(9000), 8960);
        assert_eq!(ipv4_default_advmss(65536), 65495);
        assert_eq!(ipv4_default_advmss(68), 256);
    }
}
