/* cert.c - self-signed certificates and SHA-256 fingerprints (OpenSSL 3). */
#include "common/cert.h"

#include "common/fsutil.h"
#include "common/secret.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CERT_CN_MAX 64		   /* ub-common-name in RFC 5280 */
#define CERT_DAYS_MAX 36500	   /* a hundred years */
#define CERT_SKEW_SECONDS (5 * 60) /* notBefore backdating for clock skew */
#define CERT_ENSURE_DAYS 3650

static void cert_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/* A common name we accept: 1..64 bytes, no control characters. */
static int cert_cn_ok(const char *cn)
{
	size_t i, n;

	if (cn == NULL)
		return 0;
	n = strnlen(cn, CERT_CN_MAX + 1);
	if (n == 0 || n > CERT_CN_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cn[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Letters, digits, '-', '_' and '.': what can go in a dNSName as is. */
static int cert_cn_is_dns(const char *cn)
{
	const char *p;

	for (p = cn; *p != '\0'; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return strcmp(cn, "localhost") != 0;
}

/* A random positive nonzero 128-bit serial (RFC 5280 allows up to 20 octets). */
static int cert_set_serial(X509 *x)
{
	unsigned char raw[16];
	BIGNUM *bn = NULL;
	int rc = -EIO;

	do {
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return -EIO;
		raw[0] &= 0x7f;
	} while (raw[0] == 0);
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		rc = 0;
	BN_free(bn);
	return rc;
}

static int cert_set_name_and_validity(X509 *x, const char *cn, int days)
{
	X509_NAME *name = X509_get_subject_name(x);

	if (X509_set_version(x, X509_VERSION_3) != 1)
		return -EIO;
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
				       0) != 1)
		return -EINVAL; /* not valid UTF-8 */
	if (X509_set_issuer_name(x, name) != 1)
		return -EIO;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -CERT_SKEW_SECONDS) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL)
		return -EIO;
	return 0;
}

/* Adds one extension from a fixed configuration string (never user input). */
static int cert_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -EIO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -EIO;
}

/*
 * Appends a name of type (GEN_DNS, GEN_IPADD) holding value, which it
 * takes; a NULL value (its allocation failed) is -ENOMEM.
 */
static int cert_push_name(GENERAL_NAMES *gens, int type, ASN1_STRING *value)
{
	GENERAL_NAME *gen = value ? GENERAL_NAME_new() : NULL;

	if (gen == NULL) {
		ASN1_STRING_free(value);
		return -ENOMEM;
	}
	GENERAL_NAME_set0_value(gen, type, value);
	if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
		GENERAL_NAME_free(gen);
		return -ENOMEM;
	}
	return 0;
}

static int cert_push_dns(GENERAL_NAMES *gens, const char *dns)
{
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (s != NULL && ASN1_STRING_set(s, dns, -1) != 1) {
		ASN1_IA5STRING_free(s);
		s = NULL;
	}
	return cert_push_name(gens, GEN_DNS, s);
}

static int cert_push_ip(GENERAL_NAMES *gens, const char *ip)
{
	return cert_push_name(gens, GEN_IPADD, a2i_IPADDRESS(ip));
}

/*
 * The subjectAltName is built as GENERAL_NAMEs rather than a configuration
 * string, so that a common name holding ',' or ':' cannot add entries.
 */
static int cert_add_san(X509 *x, const char *cn)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int rc = -ENOMEM;

	if (gens == NULL)
		return -ENOMEM;
	if (cert_cn_is_dns(cn) && cert_push_dns(gens, cn) < 0)
		goto out;
	if (cert_push_dns(gens, "localhost") < 0 || cert_push_ip(gens, "127.0.0.1") < 0 ||
	    cert_push_ip(gens, "::1") < 0)
		goto out;
	rc =
	    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -EIO;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static int cert_add_extensions(X509 *x, const char *cn)
{
	int rc;

	if ((rc = cert_add_ext(x, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
	    (rc = cert_add_ext(x, NID_key_usage, "critical,digitalSignature")) < 0 ||
	    (rc = cert_add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth")) < 0 ||
	    (rc = cert_add_ext(x, NID_subject_key_identifier, "hash")) < 0)
		return rc;
	return cert_add_san(x, cn);
}

/* Copies everything in a memory BIO into a malloc'd NUL-terminated string. */
static int cert_bio_to_string(BIO *bio, char **out)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *s;

	if (n <= 0)
		return -EIO;
	s = malloc((size_t)n + 1);
	if (s == NULL)
		return -ENOMEM;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	return 0;
}

static int cert_pem_strings(X509 *x, EVP_PKEY *pkey, char **cert_pem, char **key_pem)
{
	BIO *cb = BIO_new(BIO_s_mem());
	BIO *kb = BIO_new(BIO_s_secmem()); /* cleansed when freed */
	int rc = -ENOMEM;

	if (cb == NULL || kb == NULL)
		goto out;
	rc = -EIO;
	if (PEM_write_bio_X509(cb, x) != 1 ||
	    PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	if ((rc = cert_bio_to_string(cb, cert_pem)) < 0)
		goto out;
	if ((rc = cert_bio_to_string(kb, key_pem)) < 0) {
		free(*cert_pem);
		*cert_pem = NULL;
	}
out:
	BIO_free(cb);
	BIO_free(kb);
	return rc;
}

int cert_generate(const char *common_name, int days, char **cert_pem, char **key_pem)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	int rc;

	*cert_pem = NULL;
	*key_pem = NULL;
	if (!cert_cn_ok(common_name) || days < 1 || days > CERT_DAYS_MAX)
		return -EINVAL;
	rc = -EIO;
	pkey = EVP_EC_gen("P-256");
	x = X509_new();
	if (pkey == NULL || x == NULL)
		goto out;
	if ((rc = cert_set_serial(x)) < 0 ||
	    (rc = cert_set_name_and_validity(x, common_name, days)) < 0)
		goto out;
	rc = -EIO;
	if (X509_set_pubkey(x, pkey) != 1)
		goto out;
	if ((rc = cert_add_extensions(x, common_name)) < 0)
		goto out;
	rc = -EIO;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out;
	rc = cert_pem_strings(x, pkey, cert_pem, key_pem);
out:
	if (rc < 0)
		ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

int cert_fingerprint_x509(X509 *x, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (x == NULL)
		return -EINVAL;
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		ERR_clear_error();
		return -EIO;
	}
	cert_hex(md, n, out);
	return 0;
}

/* Decodes DER that must be exactly one certificate, with nothing after it. */
static X509 *cert_from_der(const unsigned char *der, long len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, len);

	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

int cert_fingerprint_pem(const char *pem, size_t len, char out[65])
{
	char *name = NULL, *header = NULL, *name2 = NULL, *header2 = NULL;
	unsigned char *der = NULL, *der2 = NULL;
	long derlen = 0, derlen2 = 0;
	X509 *x = NULL;
	BIO *bio;
	int rc = -EINVAL;

	out[0] = '\0';
	if (pem == NULL || len == 0 || len > CERT_PEM_MAX)
		return -EINVAL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return -ENOMEM;
	if (PEM_read_bio(bio, &name, &header, &der, &derlen) != 1)
		goto out;
	if (strcmp(name, PEM_STRING_X509) != 0 || header[0] != '\0')
		goto out;
	/* A second PEM block (a chain, a key) is not "one certificate". */
	if (PEM_read_bio(bio, &name2, &header2, &der2, &derlen2) == 1)
		goto out;
	x = cert_from_der(der, derlen);
	if (x == NULL)
		goto out;
	rc = cert_fingerprint_x509(x, out);
out:
	ERR_clear_error();
	X509_free(x);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	OPENSSL_free(name2);
	OPENSSL_free(header2);
	OPENSSL_free(der2);
	BIO_free(bio);
	return rc;
}

/* 1 if path exists, 0 if it does not, or the stat error. */
static int cert_file_exists(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

int cert_ensure_files(const char *cert_path, const char *key_path, const char *cn)
{
	char *cert_pem = NULL, *key_pem = NULL;
	int rc, have_cert, have_key;

	if (cert_path == NULL || key_path == NULL)
		return -EINVAL;
	if ((have_cert = cert_file_exists(cert_path)) < 0)
		return have_cert;
	if ((have_key = cert_file_exists(key_path)) < 0)
		return have_key;
	if (have_cert && have_key)
		return 0;
	rc = cert_generate(cn, CERT_ENSURE_DAYS, &cert_pem, &key_pem);
	if (rc < 0)
		return rc;
	/* Key first: a certificate is never left on disk without its key. */
	rc = fs_write_file(key_path, key_pem, strlen(key_pem), 0600);
	if (rc == 0)
		rc = fs_write_file(cert_path, cert_pem, strlen(cert_pem), 0644);
	secret_wipe(key_pem, strlen(key_pem));
	free(key_pem);
	free(cert_pem);
	return rc;
}

int cert_load_fingerprint_file(const char *cert_path, char out[65])
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	out[0] = '\0';
	rc = fs_read_file(cert_path, CERT_PEM_MAX, &data, &len);
	if (rc == 0)
		rc = cert_fingerprint_pem(data, len, out);
	free(data);
	return rc;
}
