/*
 * proxy_proto.h - the PROXY protocol header that L4 load balancers put in
 * front of a connection (HAProxy's proxy-protocol.txt, versions 1 and 2).
 *
 * proxy_proto_parse looks at the first bytes a peer sent, all of them so
 * far, and says whether they are a complete header (and how long it is),
 * could still become one (read more), or can never be one. It keeps no
 * state between calls: the caller buffers up to PROXY_PROTO_MAX_LEN bytes
 * and calls again with the longer prefix. A wrong byte is reported as soon
 * as it is seen, so a TLS ClientHello is refused at its first byte.
 *
 * What is accepted, exactly as the specification says:
 *   v1  "PROXY TCP4 a.b.c.d a.b.c.d sport dport\r\n", the same with TCP6
 *       and IPv6 addresses, or "PROXY UNKNOWN" with anything before the
 *       CRLF; single spaces, no leading zeros, ports 0..65535, at most
 *       PROXY_PROTO_V1_MAX_LEN bytes with the CRLF, a lone CR or LF refused.
 *   v2  the 12-byte signature, version 2, command LOCAL or PROXY, a known
 *       family (UNSPEC, INET, INET6, UNIX) and transport (UNSPEC, STREAM,
 *       DGRAM), a length that covers the family's addresses, and TLVs after
 *       them that are whole (type, 16-bit length, value) but otherwise
 *       ignored; the whole header at most PROXY_PROTO_MAX_LEN bytes.
 * The source address is taken only from v1 TCP4/TCP6 and from v2 PROXY
 * over TCP (INET or INET6 with STREAM); LOCAL (health checks), UNKNOWN,
 * UNSPEC, UNIX and DGRAM headers are valid but leave has_addr 0: the
 * connection keeps its socket's address.
 */
#ifndef LXCM_PROXY_PROTO_H
#define LXCM_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "net/netaddr.h"

/* The longest v1 line the specification allows, CRLF included. */
#define PROXY_PROTO_V1_MAX_LEN 107
/*
 * The longest header we read (v2 with its TLVs), as nginx does: cloud load
 * balancers add a few TLVs (endpoint ids, TLS details) to the 16 + 36 bytes
 * of a TCP6 header. Longer headers are refused.
 */
#define PROXY_PROTO_MAX_LEN 4096
#define PROXY_PROTO_V2_SIG_LEN 12
#define PROXY_PROTO_V2_HEAD_LEN 16

enum proxy_proto_status {
	PROXY_PROTO_INVALID = -1, /* can never become a valid header */
	PROXY_PROTO_MORE = 0,	  /* a valid beginning: read more */
	PROXY_PROTO_DONE = 1,	  /* a complete header of out->len bytes */
};

struct proxy_proto_header {
	size_t len;   /* bytes of the header, to skip before the payload */
	int version;  /* 1 or 2 */
	int has_addr; /* 0: keep the socket's address (see above) */
	struct net_addr src, dst;
	uint16_t src_port, dst_port;
	const char *error; /* PROXY_PROTO_INVALID: why, for a log line */
};

/*
 * Parses the len bytes at data, the first bytes of a connection. On
 * PROXY_PROTO_DONE *out describes the header; on PROXY_PROTO_INVALID
 * out->error says why; out->version is set as soon as it is known.
 */
enum proxy_proto_status proxy_proto_parse(const void *data, size_t len,
					  struct proxy_proto_header *out);

#endif
