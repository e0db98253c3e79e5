/*
 * test_common.c - unit tests for src/common: secret, timefmt, fsutil, cert,
 * envelope, json_util and jointoken.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/cert.h"
#include "common/envelope.h"
#include "common/fsutil.h"
#include "common/jointoken.h"
#include "common/json_util.h"
#include "common/secret.h"
#include "common/timefmt.h"

static char tmpdir[PATH_MAX];

/* Joins tmpdir and name into out; fails the test on truncation. */
static void tmp_path(char *out, size_t len, const char *name)
{
	int n = snprintf(out, len, "%s/%s", tmpdir, name);

	assert_true(n > 0 && (size_t)n < len);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	char tmpl[] = "/tmp/lxcm-test-common.XXXXXX";

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return -1;
	memcpy(tmpdir, tmpl, sizeof(tmpl));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- secret ---- */

/*
 * A sealed buffer never moves or changes again: appends fail with -EPERM
 * and leave data, len and the bytes as they were (issue 17: slices into a
 * head that grew after they were made).
 */
static void test_buf_seal(void **state)
{
	struct buf b;
	const char *data;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(buf_append(&b, "Host: a", 7), 0);
	buf_seal(&b);
	data = b.data;
	assert_int_equal(buf_append(&b, "more bytes that would move it", 29), -EPERM);
	assert_int_equal(buf_printf(&b, "%d", 1), -EPERM);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "Host: a", 8);
	buf_free(&b);
	/* buf_free ends the seal: the struct can be used again. */
	assert_int_equal(buf_append(&b, "x", 1), 0);
	buf_free(&b);
}

static void test_secret_random_hex(void **state)
{
	char a[65], b[65], small[64];
	size_t i;

	(void)state;
	assert_int_equal(secret_random_hex(32, a, sizeof(a)), 0);
	assert_int_equal(strlen(a), 64);
	for (i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_int_equal(secret_random_hex(32, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(secret_random_hex(32, small, sizeof(small)), -ENOSPC);
	assert_int_equal(secret_random_hex(0, small, 1), 0);
	assert_string_equal(small, "");
}

static void test_secret_random_hex_large(void **state)
{
	size_t n = 1000;
	char *out = malloc(2 * n + 1);
	size_t i;

	(void)state;
	assert_non_null(out);
	assert_int_equal(secret_random_hex(n, out, 2 * n + 1), 0);
	assert_int_equal(strlen(out), 2 * n);
	for (i = 0; i < 2 * n; i++)
		assert_non_null(strchr("0123456789abcdef", out[i]));
	free(out);
}

static void test_secret_sha256(void **state)
{
	char out[65];

	(void)state;
	secret_sha256_hex("abc", 3, out);
	assert_string_equal(out,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	secret_sha256_hex("", 0, out);
	assert_string_equal(out,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_secret_equal(void **state)
{
	(void)state;
	assert_int_equal(secret_equal("abc", 3, "abc", 3), 1);
	assert_int_equal(secret_equal("abc", 3, "abd", 3), 0);
	assert_int_equal(secret_equal("abc", 3, "abcd", 4), 0);
	assert_int_equal(secret_equal("abcd", 4, "abc", 3), 0);
	assert_int_equal(secret_equal("", 0, "", 0), 1);
	assert_int_equal(secret_equal("", 0, "a", 1), 0);
	assert_int_equal(secret_equal("a\0b", 3, "a\0c", 3), 0);
}

static void test_secret_wipe(void **state)
{
	char s[] = "hunter2";

	(void)state;
	secret_wipe(s, sizeof(s));
	for (size_t i = 0; i < sizeof(s); i++)
		assert_int_equal(s[i], 0);
	secret_wipe(NULL, 10);
}

/* ---- timefmt ---- */

static int64_t parse_ok(const char *s)
{
	int64_t t = -42;

	assert_int_equal(time_parse_rfc3339(s, strlen(s), &t), 0);
	return t;
}

static void test_time_format(void **state)
{
	char out[TIME_RFC3339_LEN];

	(void)state;
	assert_int_equal(time_format_rfc3339(0, out, sizeof(out)), 0);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	assert_int_equal(time_format_rfc3339(1795561081, out, sizeof(out)), 0);
	assert_string_equal(out, "2026-11-24T22:58:01Z");
	assert_int_equal(time_format_rfc3339(-1, out, sizeof(out)), 0);
	assert_string_equal(out, "1969-12-31T23:59:59Z");
	assert_int_equal(time_format_rfc3339(0, out, sizeof(out) - 1), -ENOSPC);
	assert_int_equal(time_format_rfc3339(INT64_C(253402300800), out, sizeof(out)), -ERANGE);
	assert_int_equal(time_format_rfc3339(INT64_C(253402300799), out, sizeof(out)), 0);
	assert_string_equal(out, "9999-12-31T23:59:59Z");
}

static void test_time_parse(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2026-11-24T22:58:01Z"), 1795561081);
	assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse_ok("2026-11-25T10:00:00.123456789+01:00"), 1795597200);
	assert_int_equal(parse_ok("2026-11-25T10:00:00+01:00"), 1795597200);
	assert_int_equal(parse_ok("2026-11-25T10:00:00-05:30"), 1795620600);
	assert_int_equal(parse_ok("2026-11-25T09:00:00.5Z"), 1795597200);
	assert_int_equal(parse_ok("2026-11-25T09:00:00.000Z"), 1795597200);
	assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), 1709164800);
	assert_int_equal(parse_ok("2000-02-29T00:00:00Z"), 951782400);
	assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1);
}

static void test_time_roundtrip(void **state)
{
	static const int64_t ts[] = {0, 1, 86399, 951782400, 1795561081, 4102444800, -86400};
	char out[TIME_RFC3339_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		assert_int_equal(time_format_rfc3339(ts[i], out, sizeof(out)), 0);
		assert_int_equal(parse_ok(out), ts[i]);
	}
}

static void test_time_parse_rejects(void **state)
{
	static const char *bad[] = {
	    "2026-13-01T00:00:00Z",
	    "garbage",
	    "",
	    "2026-00-01T00:00:00Z",
	    "2026-11-00T00:00:00Z",
	    "2026-11-31T00:00:00Z",
	    "2026-02-29T00:00:00Z",
	    "1900-02-29T00:00:00Z",
	    "2026-11-25T24:00:00Z",
	    "2026-11-25T23:60:00Z",
	    "2026-11-25T23:59:60Z",
	    "2026-11-25T10:00:00",
	    "2026-11-25T10:00:00z",
	    "2026-11-25t10:00:00Z",
	    "2026-11-25 10:00:00Z",
	    "2026-11-25T10:00:00.Z",
	    "2026-11-25T10:00:00.1234567890Z",
	    "2026-11-25T10:00:00Z ",
	    " 2026-11-25T10:00:00Z",
	    "2026-11-25T10:00:00+0100",
	    "2026-11-25T10:00:00+01",
	    "2026-11-25T10:00:00+24:00",
	    "2026-11-25T10:00:00+01:60",
	    "2026-11-25T10:00:00ZZ",
	    "2026-1-25T10:00:00Z",
	    "+2026-11-25T10:00:00Z",
	    "2026-11-25T10:00Z",
	    "2026-11-25",
	    "2026-11-25T1a:00:00Z",
	};
	size_t i;
	int64_t t = 77;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (time_parse_rfc3339(bad[i], strlen(bad[i]), &t) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(t, 77);
	}
	assert_int_equal(time_parse_rfc3339(NULL, 0, &t), -EINVAL);
}

static void test_time_parse_not_nul_terminated(void **state)
{
	const char s[] = "2026-11-24T22:58:01Z trailing";
	int64_t t = 0;

	(void)state;
	assert_int_equal(time_parse_rfc3339(s, 20, &t), 0);
	assert_int_equal(t, 1795561081);
	assert_int_equal(time_parse_rfc3339(s, 19, &t), -EINVAL);
	assert_int_equal(time_parse_rfc3339(s, 21, &t), -EINVAL);
}

static void test_time_now(void **state)
{
	int64_t a, b;

	(void)state;
	assert_true(time_now() > 1700000000);
	a = time_now_ms();
	b = time_now_ms();
	assert_true(b >= a);
}

/* ---- fsutil ---- */

static mode_t file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Counts directory entries whose name contains ".tmp." */
static int count_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".tmp.") != NULL)
			n++;
	}
	closedir(d);
	return n;
}

static void test_fs_mkdir_p(void **state)
{
	char p[PATH_MAX], f[PATH_MAX];
	struct stat st;

	(void)state;
	tmp_path(p, sizeof(p), "a/b//c/d/");
	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	tmp_path(f, sizeof(f), "a/file");
	assert_int_equal(fs_write_file(f, "x", 1, 0644), 0);
	tmp_path(p, sizeof(p), "a/file/sub");
	assert_int_equal(fs_mkdir_p(p, 0755), -ENOTDIR);
	assert_int_equal(fs_mkdir_p("", 0755), -EINVAL);
	assert_int_equal(fs_mkdir_p("/", 0755), 0);
}

static void test_fs_write_read(void **state)
{
	char p[PATH_MAX], d[PATH_MAX];
	char *data = NULL;
	size_t len = 99;
	mode_t old;

	(void)state;
	tmp_path(d, sizeof(d), "rw");
	assert_int_equal(fs_mkdir_p(d, 0700), 0);
	tmp_path(p, sizeof(p), "rw/f");
	old = umask(077);
	assert_int_equal(fs_write_file(p, "hello", 5, 0644), 0);
	umask(old);
	assert_int_equal(file_mode(p), 0644);
	old = umask(0);
	assert_int_equal(fs_write_file(p, "bye\0x", 5, 0600), 0);
	umask(old);
	assert_int_equal(file_mode(p), 0600);
	assert_int_equal(fs_read_file(p, 100, &data, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "bye\0x", 6); /* with the added NUL */
	free(data);
	assert_int_equal(fs_read_file(p, 5, &data, &len), 0);
	free(data);
	assert_int_equal(fs_read_file(p, 4, &data, &len), -E2BIG);
	assert_null(data);
	assert_int_equal(fs_write_file(p, "", 0, 0640), 0);
	assert_int_equal(fs_read_file(p, 0, &data, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	free(data);
	assert_int_equal(count_tmp_files(d), 0);
	tmp_path(p, sizeof(p), "rw/missing");
	assert_int_equal(fs_read_file(p, 100, &data, &len), -ENOENT);
	assert_null(data);
	tmp_path(p, sizeof(p), "no-such-dir/f");
	assert_int_equal(fs_write_file(p, "x", 1, 0600), -ENOENT);
}

static void test_fs_read_large(void **state)
{
	char p[PATH_MAX];
	size_t n = 100000, len = 0, i;
	char *big = malloc(n), *data = NULL;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	tmp_path(p, sizeof(p), "big");
	assert_int_equal(fs_write_file(p, big, n, 0600), 0);
	assert_int_equal(fs_read_file(p, n, &data, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(data, big, n);
	free(data);
	assert_int_equal(fs_read_file(p, n - 1, &data, &len), -E2BIG);
	free(big);
}

/* ---- cert ---- */

static X509 *pem_to_x509(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x;

	assert_non_null(bio);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *pem_to_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k;

	assert_non_null(bio);
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(k);
	return k;
}

static void test_cert_generate(void **state)
{
	char *cert = NULL, *key = NULL;
	char fp1[65], fp2[65];
	X509 *x;
	EVP_PKEY *k;
	const ASN1_INTEGER *serial;
	BIGNUM *bn;

	(void)state;
	assert_int_equal(cert_generate("node1.example", 30, &cert, &key), 0);
	assert_non_null(strstr(cert, "-----BEGIN CERTIFICATE-----"));
	assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));
	x = pem_to_x509(cert);
	k = pem_to_key(key);

	assert_int_equal(cert_fingerprint_pem(cert, strlen(cert), fp1), 0);
	assert_int_equal(cert_fingerprint_x509(x, fp2), 0);
	assert_string_equal(fp1, fp2);
	assert_int_equal(strlen(fp1), 64);

	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(X509_verify(x, k), 1);
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(X509_check_ca(x), 0);
	assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_int_equal(X509_check_host(x, "node1.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "other.example", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
	serial = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 127);
	BN_free(bn);
	assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
	assert_true(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);

	X509_free(x);
	EVP_PKEY_free(k);
	free(cert);
	secret_wipe(key, strlen(key));
	free(key);
}

static void test_cert_generate_odd_names(void **state)
{
	char *cert = NULL, *key = NULL;
	X509 *x;

	(void)state;
	/* A name with ',' and ':' must not smuggle extra SAN entries in. */
	assert_int_equal(cert_generate("evil,IP:10.0.0.1", 1, &cert, &key), 0);
	x = pem_to_x509(cert);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	X509_free(x);
	free(cert);
	free(key);
	assert_int_equal(cert_generate("localhost", 1, &cert, &key), 0);
	free(cert);
	free(key);

	assert_int_equal(cert_generate("", 1, &cert, &key), -EINVAL);
	assert_null(cert);
	assert_null(key);
	assert_int_equal(cert_generate("a\nb", 1, &cert, &key), -EINVAL);
	assert_int_equal(cert_generate("x", 0, &cert, &key), -EINVAL);
	assert_int_equal(
	    cert_generate("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1,
			  &cert, &key),
	    -EINVAL);
	assert_int_equal(cert_generate("\xff\xfe", 1, &cert, &key), -EINVAL);
}

static void test_cert_fingerprint_pem_rejects(void **state)
{
	char *cert = NULL, *key = NULL, *two, *big;
	char fp[65];
	size_t n;

	(void)state;
	assert_int_equal(cert_generate("x", 1, &cert, &key), 0);
	n = strlen(cert);

	assert_int_equal(cert_fingerprint_pem("garbage", 7, fp), -EINVAL);
	assert_int_equal(cert_fingerprint_pem("", 0, fp), -EINVAL);
	assert_int_equal(cert_fingerprint_pem(NULL, 0, fp), -EINVAL);
	assert_int_equal(cert_fingerprint_pem(key, strlen(key), fp), -EINVAL);
	/* Truncated: the END line is missing. */
	assert_int_equal(cert_fingerprint_pem(cert, n - 30, fp), -EINVAL);
	assert_string_equal(fp, "");

	/* Two certificates are not one. */
	two = malloc(2 * n + 1);
	assert_non_null(two);
	memcpy(two, cert, n);
	memcpy(two + n, cert, n + 1);
	assert_int_equal(cert_fingerprint_pem(two, 2 * n, fp), -EINVAL);
	free(two);

	/* Oversize input is refused before parsing. */
	big = calloc(1, CERT_PEM_MAX + 2);
	assert_non_null(big);
	memcpy(big, cert, n);
	memset(big + n, '\n', CERT_PEM_MAX + 1 - n);
	assert_int_equal(cert_fingerprint_pem(big, CERT_PEM_MAX + 1, fp), -EINVAL);
	assert_int_equal(cert_fingerprint_pem(big, CERT_PEM_MAX, fp), 0);
	free(big);

	/* Not NUL-terminated: exactly the PEM bytes are read. */
	assert_int_equal(cert_fingerprint_pem(cert, n, fp), 0);
	free(cert);
	free(key);
}

static void test_cert_ensure_files(void **state)
{
	char cp[PATH_MAX], kp[PATH_MAX], d[PATH_MAX];
	char fp1[65], fp2[65];
	char *cert = NULL;
	size_t len;
	mode_t old;
	X509 *x;

	(void)state;
	tmp_path(d, sizeof(d), "tls");
	assert_int_equal(fs_mkdir_p(d, 0700), 0);
	tmp_path(cp, sizeof(cp), "tls/server.crt");
	tmp_path(kp, sizeof(kp), "tls/server.key");
	old = umask(0);
	assert_int_equal(cert_ensure_files(cp, kp, "lxcm.test"), 0);
	umask(old);
	assert_int_equal(file_mode(kp), 0600);
	assert_int_equal(file_mode(cp), 0644);
	assert_int_equal(cert_load_fingerprint_file(cp, fp1), 0);

	/* Present: untouched. */
	assert_int_equal(cert_ensure_files(cp, kp, "lxcm.test"), 0);
	assert_int_equal(cert_load_fingerprint_file(cp, fp2), 0);
	assert_string_equal(fp1, fp2);

	/* The file's fingerprint is that of the certificate inside. */
	assert_int_equal(fs_read_file(cp, CERT_PEM_MAX, &cert, &len), 0);
	x = pem_to_x509(cert);
	assert_int_equal(cert_fingerprint_x509(x, fp2), 0);
	assert_string_equal(fp1, fp2);
	X509_free(x);
	free(cert);

	/* Key missing: a new pair. */
	assert_int_equal(unlink(kp), 0);
	assert_int_equal(cert_ensure_files(cp, kp, "lxcm.test"), 0);
	assert_int_equal(file_mode(kp), 0600);
	assert_int_equal(cert_load_fingerprint_file(cp, fp2), 0);
	assert_string_not_equal(fp1, fp2);
	assert_int_equal(count_tmp_files(d), 0);

	tmp_path(cp, sizeof(cp), "tls/none.crt");
	assert_int_equal(cert_load_fingerprint_file(cp, fp1), -ENOENT);
	assert_int_equal(cert_load_fingerprint_file(kp, fp1), -EINVAL);
}

/* ---- envelope ---- */

static void test_envelope_sync(void **state)
{
	size_t len = 0;
	char *s;
	json_t *md;

	(void)state;
	md = json_object();
	json_object_set_new(md, "zeta", json_integer(1));
	json_object_set_new(md, "alpha", json_string("x"));
	s = envelope_sync(md, &len);
	assert_non_null(s);
	assert_string_equal(s, "{\"type\":\"sync\",\"status\":\"Success\",\"status_code\":200,"
			       "\"operation\":\"\",\"error_code\":0,\"error\":\"\","
			       "\"metadata\":{\"zeta\":1,\"alpha\":\"x\"}}");
	assert_int_equal(len, strlen(s));
	free(s);

	s = envelope_sync(NULL, NULL);
	assert_string_equal(
	    s, "{\"type\":\"sync\",\"status\":\"Success\",\"status_code\":200,"
	       "\"operation\":\"\",\"error_code\":0,\"error\":\"\",\"metadata\":null}");
	free(s);

	s = envelope_sync(json_object(), &len);
	assert_string_equal(s,
			    "{\"type\":\"sync\",\"status\":\"Success\",\"status_code\":200,"
			    "\"operation\":\"\",\"error_code\":0,\"error\":\"\",\"metadata\":{}}");
	free(s);
}

static void test_envelope_error(void **state)
{
	size_t len = 0;
	char *s;

	(void)state;
	s = envelope_error(404, "not found", &len);
	assert_string_equal(s, "{\"type\":\"error\",\"status\":\"\",\"status_code\":0,"
			       "\"operation\":\"\",\"error_code\":404,\"error\":\"not found\","
			       "\"metadata\":null}");
	assert_int_equal(len, strlen(s));
	free(s);

	s = envelope_error(403, "bad \"token\"", NULL);
	assert_string_equal(s,
			    "{\"type\":\"error\",\"status\":\"\",\"status_code\":0,"
			    "\"operation\":\"\",\"error_code\":403,\"error\":\"bad \\\"token\\\"\","
			    "\"metadata\":null}");
	free(s);

	s = envelope_error(413, NULL, NULL);
	assert_non_null(strstr(s, "\"error\":\"Request Entity Too Large\""));
	free(s);
	s = envelope_error(400, "bad \xff byte", NULL);
	assert_non_null(strstr(s, "\"error_code\":400,\"error\":\"Bad Request\""));
	free(s);
}

static void test_envelope_status_text(void **state)
{
	(void)state;
	assert_string_equal(envelope_status_text(200), "OK");
	assert_string_equal(envelope_status_text(201), "Created");
	assert_string_equal(envelope_status_text(202), "Accepted");
	assert_string_equal(envelope_status_text(204), "No Content");
	assert_string_equal(envelope_status_text(400), "Bad Request");
	assert_string_equal(envelope_status_text(401), "Unauthorized");
	assert_string_equal(envelope_status_text(403), "Forbidden");
	assert_string_equal(envelope_status_text(404), "Not Found");
	assert_string_equal(envelope_status_text(405), "Method Not Allowed");
	assert_string_equal(envelope_status_text(408), "Request Timeout");
	assert_string_equal(envelope_status_text(409), "Conflict");
	assert_string_equal(envelope_status_text(415), "Unsupported Media Type");
	assert_string_equal(envelope_status_text(429), "Too Many Requests");
	assert_string_equal(envelope_status_text(431), "Request Header Fields Too Large");
	assert_string_equal(envelope_status_text(500), "Internal Server Error");
	assert_string_equal(envelope_status_text(501), "Not Implemented");
	assert_string_equal(envelope_status_text(502), "Bad Gateway");
	assert_string_equal(envelope_status_text(503), "Service Unavailable");
	assert_string_equal(envelope_status_text(504), "Gateway Timeout");
	assert_string_equal(envelope_status_text(418), "Unknown");
	assert_string_equal(envelope_status_text(-1), "Unknown");
}

/* ---- json_util ---- */

static void test_json_parse_object(void **state)
{
	char err[128];
	json_t *o = NULL;
	const char *s;
	long long v;
	const char body[] = "{\"a\":\"x\",\"n\":42,\"f\":1.0,\"z\":null}junk";

	(void)state;
	assert_int_equal(json_parse_object(body, sizeof(body) - 5, &o, err, sizeof(err)), 0);
	/* jansson refuses \u0000 when parsing; code can still build such a string. */
	json_object_set_new(o, "nul", json_stringn("a\0b", 3));
	assert_int_equal(json_get_string(o, "a", &s), 0);
	assert_string_equal(s, "x");
	assert_int_equal(json_get_int(o, "n", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(json_get_string(o, "n", &s), -EINVAL);
	assert_int_equal(json_get_int(o, "a", &v), -EINVAL);
	assert_int_equal(json_get_int(o, "f", &v), -EINVAL);
	assert_int_equal(json_get_string(o, "z", &s), -EINVAL);
	assert_int_equal(json_get_string(o, "nul", &s), -EINVAL);
	assert_int_equal(json_get_string(o, "missing", &s), -ENOENT);
	assert_int_equal(json_get_int(o, "missing", &v), -ENOENT);
	assert_int_equal(json_get_string(json_object_get(o, "a"), "a", &s), -EINVAL);
	json_decref(o);

	assert_int_equal(json_parse_object(body, sizeof(body) - 1, &o, err, sizeof(err)), -EINVAL);
	assert_null(o);
	assert_true(strncmp(err, "invalid JSON: ", 14) == 0);
	assert_int_equal(json_parse_object("[1,2]", 5, &o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "expected a JSON object");
	assert_int_equal(json_parse_object("\"s\"", 3, &o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "expected a JSON object");
	assert_int_equal(json_parse_object("{\"a\":1,\"a\":2}", 13, &o, err, sizeof(err)), -EINVAL);
	assert_true(strncmp(err, "invalid JSON: ", 14) == 0);
	assert_int_equal(json_parse_object("", 0, &o, err, sizeof(err)), -EINVAL);
	assert_int_equal(json_parse_object("{\"a\":\"\\u0000\"}", 14, &o, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(json_parse_object(NULL, 0, &o, NULL, 0), -EINVAL);
	assert_int_equal(json_parse_object("{\"\xff\":1}", 7, &o, err, sizeof(err)), -EINVAL);
	for (const char *p = err; *p; p++)
		assert_true(*p >= 0x20 && *p <= 0x7e);
	/* A tiny err buffer is filled, cut short, and terminated. */
	assert_int_equal(json_parse_object("nope", 4, &o, err, 8), -EINVAL);
	assert_string_equal(err, "invalid");
	assert_int_equal(json_parse_object(" {} \n", 5, &o, err, sizeof(err)), 0);
	json_decref(o);
}

/* ---- jointoken ---- */

/* Base64 with OpenSSL, independent of jointoken.c's codec. */
static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

static int decode_json(const char *js)
{
	struct join_token t;
	char *tok = b64(js);
	int rc = join_token_decode(tok, strlen(tok), &t);

	if (rc == 0)
		join_token_clear(&t);
	assert_null(t.server_name);
	free(tok);
	return rc;
}

#define FP_LOWER "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_AB "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"

static void test_join_token_roundtrip(void **state)
{
	char *addrs[] = {"10.0.0.1:8443", "[fd00::1]:8443"};
	struct join_token in = {
	    .server_name = "lab",
	    .fingerprint = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	    .addresses = addrs,
	    .naddresses = 2,
	    .secret = "c2VjcmV0",
	    .expires_at = 1795561081,
	};
	struct join_token out;
	char *tok = NULL;
	unsigned char raw[1024];
	int n;

	(void)state;
	assert_int_equal(join_token_encode(&in, &tok), 0);
	/* The JSON inside is compact, in field order, with a lowercase fingerprint. */
	n = EVP_DecodeBlock(raw, (const unsigned char *)tok, (int)strlen(tok));
	assert_true(n > 0);
	while (n > 0 && raw[n - 1] == '\0')
		n--;
	raw[n] = '\0';
	assert_string_equal((char *)raw,
			    "{\"server_name\":\"lab\",\"fingerprint\":\"" FP_LOWER "\","
			    "\"addresses\":[\"10.0.0.1:8443\",\"[fd00::1]:8443\"],"
			    "\"secret\":\"c2VjcmV0\",\"expires_at\":\"2026-11-24T22:58:01Z\"}");

	assert_int_equal(join_token_decode(tok, strlen(tok), &out), 0);
	assert_string_equal(out.server_name, "lab");
	assert_string_equal(out.fingerprint, FP_LOWER);
	assert_int_equal(out.naddresses, 2);
	assert_string_equal(out.addresses[0], "10.0.0.1:8443");
	assert_string_equal(out.addresses[1], "[fd00::1]:8443");
	assert_string_equal(out.secret, "c2VjcmV0");
	assert_int_equal(out.expires_at, 1795561081);
	join_token_clear(&out);
	assert_null(out.secret);
	join_token_clear(&out);
	join_token_clear(NULL);
	free(tok);
}

static void test_join_token_encode_rejects(void **state)
{
	char *addrs[33] = {"a:1"};
	struct join_token t = {"lab", FP_LOWER, addrs, 1, "s", 0};
	struct join_token bad;
	char *tok = NULL;
	size_t i;

	(void)state;
	for (i = 1; i < 33; i++)
		addrs[i] = "b:2";
	bad = t;
	bad.server_name = "";
	assert_int_equal(join_token_encode(&bad, &tok), -EINVAL);
	assert_null(tok);
	bad = t;
	bad.secret = NULL;
	assert_int_equal(join_token_encode(&bad, &tok), -EINVAL);
	bad = t;
	bad.fingerprint = "abc";
	assert_int_equal(join_token_encode(&bad, &tok), -EINVAL);
	bad = t;
	bad.naddresses = 0;
	assert_int_equal(join_token_encode(&bad, &tok), -EINVAL);
	bad = t;
	bad.naddresses = 33;
	assert_int_equal(join_token_encode(&bad, &tok), -EINVAL);
	bad = t;
	bad.naddresses = 32;
	assert_int_equal(join_token_encode(&bad, &tok), 0);
	free(tok);
	bad = t;
	bad.expires_at = INT64_C(253402300800);
	assert_int_equal(join_token_encode(&bad, &tok), -EINVAL);
	bad = t;
	bad.server_name = "\xff";
	assert_int_equal(join_token_encode(&bad, &tok), -EINVAL);
	assert_null(tok);
}

/* json.dumps() output (spaces after ':' and ','), upper-case fingerprint. */
static const char python_token[] =
    "eyJzZXJ2ZXJfbmFtZSI6ICJsYWIiLCAiZmluZ2VycHJpbnQiOiAiQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJB"
    "QkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQiIsICJhZGRyZXNzZXMiOiBbIjEwLjAuMC4xOjg0"
    "NDMiLCAiW2ZkMDA6OjFdOjg0NDMiXSwgInNlY3JldCI6ICJzM2NyM3QiLCAiZXhwaXJlc19hdCI6ICIyMDI2LTEx"
    "LTI1VDEwOjAwOjAwLjEyMzQ1Njc4OSswMTowMCJ9";
/* The same shape with one address and secret "s3cr3t!": ends in "==". */
static const char python_token_pad2[] =
    "eyJzZXJ2ZXJfbmFtZSI6ICJsYWIiLCAiZmluZ2VycHJpbnQiOiAiQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJB"
    "QkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQiIsICJhZGRyZXNzZXMiOiBbIjEwLjAuMC4xOjg0"
    "NDMiXSwgInNlY3JldCI6ICJzM2NyM3QhIiwgImV4cGlyZXNfYXQiOiAiMjAyNi0xMS0yNVQwOTowMDowMFoifQ==";
/* Secret "s3cr3t!!": ends in one "=". */
static const char python_token_pad1[] =
    "eyJzZXJ2ZXJfbmFtZSI6ICJsYWIiLCAiZmluZ2VycHJpbnQiOiAiQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJB"
    "QkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQkFCQUJBQiIsICJhZGRyZXNzZXMiOiBbIjEwLjAuMC4xOjg0"
    "NDMiXSwgInNlY3JldCI6ICJzM2NyM3QhISIsICJleHBpcmVzX2F0IjogIjIwMjYtMTEtMjVUMDk6MDA6MDBaIn0=";

static void test_join_token_decode_python(void **state)
{
	struct join_token t;
	char *ws;
	size_t n;

	(void)state;
	assert_int_equal(join_token_decode(python_token, strlen(python_token), &t), 0);
	assert_string_equal(t.server_name, "lab");
	assert_string_equal(t.fingerprint,
			    "abababababababababababababababababababababababababababababababab");
	assert_int_equal(t.naddresses, 2);
	assert_string_equal(t.addresses[1], "[fd00::1]:8443");
	assert_string_equal(t.secret, "s3cr3t");
	assert_int_equal(t.expires_at, 1795597200);
	join_token_clear(&t);

	assert_int_equal(join_token_decode(python_token_pad2, strlen(python_token_pad2), &t), 0);
	assert_string_equal(t.secret, "s3cr3t!");
	assert_int_equal(t.expires_at, 1795597200);
	join_token_clear(&t);
	assert_int_equal(join_token_decode(python_token_pad1, strlen(python_token_pad1), &t), 0);
	assert_string_equal(t.secret, "s3cr3t!!");
	join_token_clear(&t);

	/* Pasted with surrounding whitespace; not NUL-terminated. */
	n = strlen(python_token);
	ws = malloc(n + 8);
	assert_non_null(ws);
	memcpy(ws, "  \t\n", 4);
	memcpy(ws + 4, python_token, n);
	memcpy(ws + 4 + n, "\r\n  ", 4);
	assert_int_equal(join_token_decode(ws, n + 8, &t), 0);
	assert_string_equal(t.server_name, "lab");
	join_token_clear(&t);
	free(ws);
}

static int decode_str(const char *s)
{
	struct join_token t;
	int rc = join_token_decode(s, strlen(s), &t);

	if (rc == 0)
		join_token_clear(&t);
	assert_null(t.server_name);
	assert_null(t.addresses);
	assert_null(t.secret);
	return rc;
}

static void test_join_token_decode_bad_base64(void **state)
{
	char tok[sizeof(python_token_pad2)];
	size_t n = strlen(python_token_pad2);

	(void)state;
	/* Truncated. */
	memcpy(tok, python_token_pad2, n + 1);
	tok[n - 5] = '\0';
	assert_int_equal(decode_str(tok), -EINVAL);
	/* Truncated at a multiple of four: valid base64 of cut JSON. */
	tok[n - 8] = '\0';
	assert_int_equal(decode_str(tok), -EINVAL);
	/* Padding removed. */
	memcpy(tok, python_token_pad2, n + 1);
	tok[n - 2] = '\0';
	assert_int_equal(decode_str(tok), -EINVAL);
	/* Three '='. */
	memcpy(tok, python_token_pad2, n + 1);
	tok[n - 3] = '=';
	assert_int_equal(decode_str(tok), -EINVAL);
	/* '=' inside. */
	memcpy(tok, python_token_pad2, n + 1);
	tok[8] = '=';
	assert_int_equal(decode_str(tok), -EINVAL);
	/* Non-zero bits under the padding ("fQ==" -> "fR==", "In0=" -> "In1="). */
	memcpy(tok, python_token_pad2, n + 1);
	tok[n - 3] = 'R';
	assert_int_equal(decode_str(tok), -EINVAL);
	memcpy(tok, python_token_pad1, n + 1);
	tok[n - 2] = '1';
	assert_int_equal(decode_str(tok), -EINVAL);
	/* Characters outside the standard alphabet. */
	memcpy(tok, python_token_pad2, n + 1);
	tok[10] = '-';
	assert_int_equal(decode_str(tok), -EINVAL);
	tok[10] = ' ';
	assert_int_equal(decode_str(tok), -EINVAL);
	tok[10] = '\0';
	assert_int_equal(decode_str(tok), -EINVAL);
	{
		struct join_token t;

		memcpy(tok, python_token_pad2, n + 1);
		tok[10] = '\0';
		assert_int_equal(join_token_decode(tok, n, &t), -EINVAL);
		assert_int_equal(join_token_decode(NULL, 0, &t), -EINVAL);
	}
	assert_int_equal(decode_str(""), -EINVAL);
	assert_int_equal(decode_str("   "), -EINVAL);
	assert_int_equal(decode_str("===="), -EINVAL);
	assert_int_equal(decode_str("not a token"), -EINVAL);
}

static void test_join_token_decode_bad_json(void **state)
{
	char fp63[64], js[512];
	int n;

	(void)state;
	assert_int_equal(decode_json("not json"), -EINVAL);
	assert_int_equal(decode_json("[1,2,3]"), -EINVAL);
	assert_int_equal(decode_json("{}"), -EINVAL);
	assert_int_equal(decode_json("\"x\""), -EINVAL);
	/* Duplicate key. */
	assert_int_equal(
	    decode_json("{\"server_name\":\"a\",\"server_name\":\"b\",\"fingerprint\":\"" FP_AB
			"\",\"addresses\":[\"a:1\"],\"secret\":\"s\",\"expires_at\":"
			"\"2026-11-25T09:00:00Z\"}"),
	    -EINVAL);
	/* The good one, to show the template below is otherwise valid. */
#define TOK(sn, fp, ad, se, ex)                                                                    \
	"{\"server_name\":" sn ",\"fingerprint\":" fp ",\"addresses\":" ad ",\"secret\":" se       \
	",\"expires_at\":" ex ",\"extra\":{\"ignored\":true}}"
#define GOOD_FP "\"" FP_AB "\""
#define GOOD_EX "\"2026-11-25T09:00:00Z\""
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\"]", "\"s\"", GOOD_EX)), 0);
	/* Missing fields. */
	assert_int_equal(decode_json("{\"fingerprint\":" GOOD_FP ",\"addresses\":[\"a:1\"],"
				     "\"secret\":\"s\",\"expires_at\":" GOOD_EX "}"),
			 -EINVAL);
	assert_int_equal(decode_json("{\"server_name\":\"a\",\"addresses\":[\"a:1\"],"
				     "\"secret\":\"s\",\"expires_at\":" GOOD_EX "}"),
			 -EINVAL);
	assert_int_equal(decode_json("{\"server_name\":\"a\",\"fingerprint\":" GOOD_FP ","
				     "\"secret\":\"s\",\"expires_at\":" GOOD_EX "}"),
			 -EINVAL);
	assert_int_equal(decode_json("{\"server_name\":\"a\",\"fingerprint\":" GOOD_FP ","
				     "\"addresses\":[\"a:1\"],\"expires_at\":" GOOD_EX "}"),
			 -EINVAL);
	assert_int_equal(decode_json("{\"server_name\":\"a\",\"fingerprint\":" GOOD_FP ","
				     "\"addresses\":[\"a:1\"],\"secret\":\"s\"}"),
			 -EINVAL);
	/* Wrong types. */
	assert_int_equal(decode_json(TOK("1", GOOD_FP, "[\"a:1\"]", "\"s\"", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("null", GOOD_FP, "[\"a:1\"]", "\"s\"", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", "[]", "[\"a:1\"]", "\"s\"", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "\"a:1\"", "\"s\"", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\",2]", "\"s\"", GOOD_EX)),
			 -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\"]", "{}", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\"]", "\"s\"", "1795597200")),
			 -EINVAL);
	/* Empty values. */
	assert_int_equal(decode_json(TOK("\"\"", GOOD_FP, "[\"a:1\"]", "\"s\"", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[]", "\"s\"", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"\"]", "\"s\"", GOOD_EX)), -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\"]", "\"\"", GOOD_EX)), -EINVAL);
	/* Embedded NUL. */
	assert_int_equal(decode_json(TOK("\"a\\u0000b\"", GOOD_FP, "[\"a:1\"]", "\"s\"", GOOD_EX)),
			 -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\\u0000\"]", "\"s\"", GOOD_EX)),
			 -EINVAL);
	/* Bad fingerprints and expiry. */
	assert_int_equal(decode_json(TOK("\"a\"", "\"" FP_AB "0\"", "[\"a:1\"]", "\"s\"", GOOD_EX)),
			 -EINVAL);
	memcpy(fp63, FP_AB, 63);
	fp63[63] = '\0';
	n = snprintf(js, sizeof(js), TOK("\"a\"", "\"%s\"", "[\"a:1\"]", "\"s\"", GOOD_EX), fp63);
	assert_true(n > 0 && (size_t)n < sizeof(js));
	assert_int_equal(decode_json(js), -EINVAL);
	fp63[5] = 'g';
	n = snprintf(js, sizeof(js), TOK("\"a\"", "\"%sA\"", "[\"a:1\"]", "\"s\"", GOOD_EX), fp63);
	assert_true(n > 0 && (size_t)n < sizeof(js));
	assert_int_equal(decode_json(js), -EINVAL);
	assert_int_equal(
	    decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\"]", "\"s\"", "\"2026-13-01T00:00:00Z\"")),
	    -EINVAL);
	assert_int_equal(decode_json(TOK("\"a\"", GOOD_FP, "[\"a:1\"]", "\"s\"", "\"tomorrow\"")),
			 -EINVAL);
}

static void test_join_token_decode_limits(void **state)
{
	char js[4096], *p, *tok, *big;
	size_t i, n;
	int rc;
	struct join_token t;

	(void)state;
	/* 32 addresses are fine, 33 are not. */
	for (int count = 32; count <= 33; count++) {
		p = js;
		rc = snprintf(p, sizeof(js),
			      "{\"server_name\":\"a\",\"fingerprint\":" GOOD_FP
			      ",\"secret\":\"s\",\"expires_at\":" GOOD_EX ",\"addresses\":[");
		assert_true(rc > 0 && (size_t)rc < sizeof(js));
		n = (size_t)rc;
		for (i = 0; i < (size_t)count; i++) {
			rc = snprintf(js + n, sizeof(js) - n, "%s\"h%zu:1\"", i ? "," : "", i);
			assert_true(rc > 0 && (size_t)rc < sizeof(js) - n);
			n += (size_t)rc;
		}
		rc = snprintf(js + n, sizeof(js) - n, "]}");
		assert_true(rc > 0 && (size_t)rc < sizeof(js) - n);
		assert_int_equal(decode_json(js), count == 32 ? 0 : -EINVAL);
	}

	/* Oversize: a valid token padded with whitespace past the cap. */
	n = strlen(python_token);
	big = malloc(JOIN_TOKEN_MAX + 1);
	assert_non_null(big);
	memcpy(big, python_token, n);
	memset(big + n, ' ', JOIN_TOKEN_MAX + 1 - n);
	assert_int_equal(join_token_decode(big, JOIN_TOKEN_MAX, &t), 0);
	join_token_clear(&t);
	assert_int_equal(join_token_decode(big, JOIN_TOKEN_MAX + 1, &t), -EINVAL);
	assert_null(t.server_name);
	/* Oversize: a token whose JSON is simply too long. */
	tok = malloc(JOIN_TOKEN_MAX + 5);
	assert_non_null(tok);
	memset(tok, 'A', JOIN_TOKEN_MAX + 4);
	tok[JOIN_TOKEN_MAX + 4] = '\0';
	assert_int_equal(decode_str(tok), -EINVAL);
	free(tok);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_seal),
	    cmocka_unit_test(test_secret_random_hex),
	    cmocka_unit_test(test_secret_random_hex_large),
	    cmocka_unit_test(test_secret_sha256),
	    cmocka_unit_test(test_secret_equal),
	    cmocka_unit_test(test_secret_wipe),
	    cmocka_unit_test(test_time_format),
	    cmocka_unit_test(test_time_parse),
	    cmocka_unit_test(test_time_roundtrip),
	    cmocka_unit_test(test_time_parse_rejects),
	    cmocka_unit_test(test_time_parse_not_nul_terminated),
	    cmocka_unit_test(test_time_now),
	    cmocka_unit_test(test_fs_mkdir_p),
	    cmocka_unit_test(test_fs_write_read),
	    cmocka_unit_test(test_fs_read_large),
	    cmocka_unit_test(test_cert_generate),
	    cmocka_unit_test(test_cert_generate_odd_names),
	    cmocka_unit_test(test_cert_fingerprint_pem_rejects),
	    cmocka_unit_test(test_cert_ensure_files),
	    cmocka_unit_test(test_envelope_sync),
	    cmocka_unit_test(test_envelope_error),
	    cmocka_unit_test(test_envelope_status_text),
	    cmocka_unit_test(test_json_parse_object),
	    cmocka_unit_test(test_join_token_roundtrip),
	    cmocka_unit_test(test_join_token_encode_rejects),
	    cmocka_unit_test(test_join_token_decode_python),
	    cmocka_unit_test(test_join_token_decode_bad_base64),
	    cmocka_unit_test(test_join_token_decode_bad_json),
	    cmocka_unit_test(test_join_token_decode_limits),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
