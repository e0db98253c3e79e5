/*
 * cert.h - TLS certificates: self-signed generation, SHA-256 fingerprints,
 * and the cert/key files of a listener or agent.
 *
 * A fingerprint is the lowercase hex SHA-256 of the certificate's DER, the
 * form MicroCloud puts in join tokens and compares case-insensitively.
 * All functions return 0 or a negative errno code (-EIO when OpenSSL fails
 * for a reason other than bad input); strings are malloc'd, caller frees.
 */
#ifndef LXCM_CERT_H
#define LXCM_CERT_H

#include <stddef.h>

#include <openssl/x509.h>

/* Largest PEM certificate we parse: a leaf is about 1 KiB. */
#define CERT_PEM_MAX (64 * 1024)

/*
 * Makes a self-signed ECDSA P-256 certificate valid for days days (from five
 * minutes ago, for clock skew), signed with SHA-256, with a random positive
 * 128-bit serial, subject CN=common_name, basicConstraints critical CA:FALSE,
 * keyUsage critical digitalSignature, extKeyUsage serverAuth and clientAuth,
 * and subjectAltName DNS:<common_name> (when it is a DNS name, not
 * "localhost"), DNS:localhost, IP:127.0.0.1 and IP:::1, so a server
 * certificate also works on loopback.
 * On success *cert_pem and *key_pem (PKCS#8, unencrypted) are malloc'd
 * NUL-terminated PEM; the caller frees them and should secret_wipe the key.
 * -EINVAL if common_name is empty, longer than 64 bytes, not UTF-8 or holds
 * control characters, or days is not in 1..36500.
 */
int cert_generate(const char *common_name, int days, char **cert_pem, char **key_pem);

/* Writes the fingerprint of x and a NUL to out. */
int cert_fingerprint_x509(X509 *x, char out[65]);

/*
 * Fingerprints the certificate in len bytes of PEM. The input must hold
 * exactly one PEM block, of type CERTIFICATE, whose DER is one whole X.509
 * certificate; text outside the block is ignored. -EINVAL for anything else,
 * including len > CERT_PEM_MAX. pem need not be NUL-terminated.
 */
int cert_fingerprint_pem(const char *pem, size_t len, char out[65]);

/*
 * Makes sure a certificate and key exist at cert_path and key_path. If both
 * exist, nothing is touched. If either is missing, a new pair for cn (valid
 * ten years) is generated and both files are written atomically, the
 * certificate 0644 and the key 0600. The parent directories must exist.
 * Errors other than a missing file (say -EACCES) are returned, not repaired.
 */
int cert_ensure_files(const char *cert_path, const char *key_path, const char *cn);

/* Reads a PEM certificate file (at most CERT_PEM_MAX) and fingerprints it. */
int cert_load_fingerprint_file(const char *cert_path, char out[65]);

#endif
