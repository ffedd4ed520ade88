//! What a connection takes from its route: the MSS it advertises, from the device's MTU and
//! the IP version's header.

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

/// IPv6 (40) + TCP (20) header bytes without options.
const IPV6_HEADER_SIZE: u32 = 40 + 20;
/// `net.ipv6.route.min_adv_mss` (`ip6_rt_min_advmss`): `IPV6_MIN_MTU` (1280) − 20 − 40, its
/// default (route.c `ip6_route_net_init`).
const IP6_RT_MIN_ADVMSS: u32 = 1280 - 20 - 40;
/// `IPV6_MAXPLEN`: the largest non-jumbo IPv6 payload.
const IPV6_MAXPLEN: u32 = 65535;

/// net/ipv6/route.c `ip6_default_advmss`: MTU − `sizeof(struct ipv6hdr)` −
/// `sizeof(struct tcphdr)`, at least `ip6_rt_min_advmss`, and `IPV6_MAXPLEN` ("any MSS")
/// above `IPV6_MAXPLEN` − 20. A 1500-byte veth gives 1440, loopback's 65536 gives 65476.
/// It is also the path's MSS the connection sends with, as `tcp_mtu_to_mss` gives it with
/// `icsk_af_ops->net_header_len` = `sizeof(struct ipv6hdr)` (tcp_ipv6.c `ipv6_specific`).
pub fn ip6_default_advmss(mtu: u32) -> u16 {
    let advmss = mtu.saturating_sub(IPV6_HEADER_SIZE).max(IP6_RT_MIN_ADVMSS);
    if advmss > IPV6_MAXPLEN - 20 {
        IPV6_MAXPLEN as u16
    } else {
        advmss as u16
    }
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

    #[test]
    fn ipv6_advmss_leaves_room_for_the_40_byte_header() {
        assert_eq!(ip6_default_advmss(1500), 1500 - 40 - 20);
        assert_eq!(ip6_default_advmss(9000), 9000 - 60);
        assert_eq!(ip6_default_advmss(65536), 65_476); // 65536 − 60
        // Below IPv6's minimum MTU the floor holds: 1280 − 60.
        assert_eq!(ip6_default_advmss(1280), 1220);
        assert_eq!(ip6_default_advmss(1000), 1220);
    }
}
