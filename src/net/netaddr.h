/*
 * netaddr.h - IP addresses and CIDR ranges, for --trusted-proxy and
 * --proxy-protocol-from.
 *
 * Addresses are IPv4 or IPv6 in their usual text forms (an IPv6 address
 * may be in brackets); an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the
 * IPv4 address. A range is an address with an optional /prefix; without
 * one it is that single address.
 */
#ifndef LXCM_NETADDR_H
#define LXCM_NETADDR_H

#include <stddef.h>
#include <stdint.h>

#define NET_ADDR_TEXT_MAX 48

struct net_addr {
	int v6; /* 0: IPv4 in bytes[0..3] */
	uint8_t bytes[16];
};

struct net_cidr {
	struct net_addr addr;
	int prefix;
};

/* Parses len bytes of s (surrounding blanks allowed). 0 or -EINVAL. */
int net_addr_parse(const char *s, size_t len, struct net_addr *out);
/* 4 (v6 0) or 16 network-order bytes; an IPv4-mapped IPv6 address is IPv4. */
void net_addr_from_bytes(int v6, const uint8_t *bytes, struct net_addr *out);
/* "a.b.c.d" or the canonical IPv6 text, without brackets. */
void net_addr_format(const struct net_addr *a, char out[NET_ADDR_TEXT_MAX]);
/* "10.0.0.0/8", "fd00::/8", "192.0.2.7". 0 or -EINVAL. */
int net_cidr_parse(const char *s, struct net_cidr *out);
int net_cidr_contains(const struct net_cidr *c, const struct net_addr *a);
/*
 * Appends each range of the comma-separated s ("10.0.0.0/8,::1") to list,
 * which holds *n ranges and room for max. 0, or -EINVAL for an empty item,
 * a bad range or more than max in all (list and *n are then unspecified).
 */
int net_cidr_list_parse(const char *s, struct net_cidr *list, size_t max, size_t *n);
int net_cidr_list_contains(const struct net_cidr *list, size_t n, const struct net_addr *a);

#endif
