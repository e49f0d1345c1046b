/* uploadfs-server: a local server that speaks the OpenAI Uploads and Files API. */
#include "http.h"
#include "parse.h"
#include "secret.h"
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct options {
	const char *listen;
	const char *data;
	char *api_key;
	int64_t expire_seconds;
	struct srv_limits lim;
	double fail_rate;
	uint64_t seed;
	unsigned fail_first;
	enum srv_fail_kind fail_kind;
	unsigned latency_ms;
	bool no_uploads;
	uint64_t cut_downloads;
	const char *log_requests;
	const char *tls_cert, *tls_key; /* PEM files; both or neither */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uploadfs-server [options]\n"
		"A local server for the OpenAI Uploads and Files API.\n\n"
		"  --listen HOST:PORT        address to listen on; port 0 picks a free one "
		"(127.0.0.1:8080)\n"
		"  --data DIR                where files, parts and state live (./uploadfs-data)\n"
		"  --api-key KEY             require Authorization: Bearer KEY\n"
		"  --api-key-file PATH       the same, with the key read from a 0600 file\n"
		"  --expire-seconds N        upload sessions expire after N s (3600)\n"
		"  --max-part-bytes SIZE     largest part (64M)\n"
		"  --max-upload-bytes SIZE   largest upload (8G)\n"
		"  --max-file-bytes SIZE     largest POST /v1/files (512M)\n"
		"  --allow-downloads         serve content of every purpose\n"
		"  --fail-rate P             fraction of part/complete requests that fail (0)\n"
		"  --fail-kind K             mixed, 500, 429, drop or drop-after (mixed)\n"
		"  --fail-first N            the first N part/complete requests fail (0)\n"
		"  --seed N                  seed for the fault choices (1)\n"
		"  --latency-ms N            delay added to every response (0)\n"
		"  --no-uploads              answer /v1/uploads* with 404 (a Files-only server)\n"
		"  --cut-downloads SIZE      cut every file content response after SIZE bytes\n"
		"  --log-requests FILE       one JSON line per request, keys redacted\n"
		"  --tls-cert FILE           serve HTTPS with this PEM certificate (chain)\n"
		"  --tls-key FILE            ... and this PEM private key (mode 0600 or 0400)\n"
		"  -h, --help                this text\n"
		"  -V, --version             the version\n"
		"Sizes take a K, M or G suffix (powers of 1024).\n");
}

static int bad(const char *opt, const char *val, const char *what)
{
	fprintf(stderr, "uploadfs-server: invalid %s '%s': %s\n", opt, val, what);
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum {
		O_LISTEN = 256,
		O_DATA,
		O_KEY,
		O_KEY_FILE,
		O_EXPIRE,
		O_MAX_PART,
		O_MAX_UPLOAD,
		O_MAX_FILE,
		O_ALLOW_DL,
		O_FAIL_RATE,
		O_FAIL_KIND,
		O_FAIL_FIRST,
		O_SEED,
		O_LATENCY,
		O_NO_UPLOADS,
		O_LOG,
		O_TLS_CERT,
		O_CUT_DL,
		O_TLS_KEY
	};
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"data", required_argument, NULL, O_DATA},
	    {"api-key", required_argument, NULL, O_KEY},
	    {"api-key-file", required_argument, NULL, O_KEY_FILE},
	    {"expire-seconds", required_argument, NULL, O_EXPIRE},
	    {"max-part-bytes", required_argument, NULL, O_MAX_PART},
	    {"max-upload-bytes", required_argument, NULL, O_MAX_UPLOAD},
	    {"max-file-bytes", required_argument, NULL, O_MAX_FILE},
	    {"allow-downloads", no_argument, NULL, O_ALLOW_DL},
	    {"fail-rate", required_argument, NULL, O_FAIL_RATE},
	    {"fail-kind", required_argument, NULL, O_FAIL_KIND},
	    {"fail-first", required_argument, NULL, O_FAIL_FIRST},
	    {"seed", required_argument, NULL, O_SEED},
	    {"latency-ms", required_argument, NULL, O_LATENCY},
	    {"no-uploads", no_argument, NULL, O_NO_UPLOADS},
	    {"log-requests", required_argument, NULL, O_LOG},
	    {"tls-cert", required_argument, NULL, O_TLS_CERT},
	    {"cut-downloads", required_argument, NULL, O_CUT_DL},
	    {"tls-key", required_argument, NULL, O_TLS_KEY},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	uint64_t v;
	char why[512];
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "option";
		switch (c) {
		case O_LISTEN:
			o->listen = optarg;
			break;
		case O_DATA:
			o->data = optarg;
			break;
		case O_KEY:
			up_secret_free(o->api_key);
			if (!*optarg || !(o->api_key = strdup(optarg)))
				return bad("--api-key", "", "must not be empty");
			break;
		case O_KEY_FILE:
			up_secret_free(o->api_key);
			o->api_key = NULL;
			if (up_secret_read_file(optarg, &o->api_key, why, sizeof why) < 0) {
				fprintf(stderr, "uploadfs-server: %s\n", why);
				return -EINVAL;
			}
			break;
		case O_EXPIRE:
			if (up_parse_u64(optarg, &v) < 0 || v == 0 || v > 315360000)
				return bad(name, optarg, "expected seconds from 1 to 315360000");
			o->lim.expire_seconds = (int64_t)v;
			break;
		case O_MAX_PART:
		case O_MAX_UPLOAD:
		case O_MAX_FILE:
			if (up_parse_size(optarg, &v) < 0 || v == 0)
				return bad(name, optarg, "expected a size such as 64M");
			*(c == O_MAX_PART     ? &o->lim.max_part_bytes
			  : c == O_MAX_UPLOAD ? &o->lim.max_upload_bytes
					      : &o->lim.max_file_bytes) = v;
			break;
		case O_ALLOW_DL:
			o->lim.allow_downloads = true;
			break;
		case O_FAIL_RATE:
			if (up_parse_double(optarg, &o->fail_rate) < 0 || o->fail_rate < 0 ||
			    o->fail_rate > 1)
				return bad(name, optarg, "expected a fraction from 0 to 1");
			break;
		case O_FAIL_KIND: {
			static const char *const kinds[] = {"mixed", "500", "429", "drop",
							    "drop-after"};
			int k = -1;
			for (int i = 0; i < 5; i++)
				if (strcmp(optarg, kinds[i]) == 0)
					k = i;
			if (k < 0)
				return bad(name, optarg,
					   "expected mixed, 500, 429, drop or drop-after");
			o->fail_kind = (enum srv_fail_kind)k;
			break;
		}
		case O_FAIL_FIRST:
			if (up_parse_u64(optarg, &v) < 0 || v > 1000000)
				return bad(name, optarg, "expected a count");
			o->fail_first = (unsigned)v;
			break;
		case O_SEED:
			if (up_parse_u64(optarg, &o->seed) < 0)
				return bad(name, optarg, "expected an unsigned integer");
			break;
		case O_LATENCY:
			if (up_parse_u64(optarg, &v) < 0 || v > 600000)
				return bad(name, optarg, "expected milliseconds up to 600000");
			o->latency_ms = (unsigned)v;
			break;
		case O_NO_UPLOADS:
			o->no_uploads = true;
			break;
		case O_LOG:
			o->log_requests = optarg;
			break;
		case O_CUT_DL:
			if (up_parse_size(optarg, &o->cut_downloads) < 0 || o->cut_downloads == 0)
				return bad(name, optarg, "expected a size such as 2M");
			break;
		case O_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case O_TLS_KEY:
			o->tls_key = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("uploadfs-server %s\n", UP_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uploadfs-server: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "uploadfs-server: --tls-cert and --tls-key go together\n");
		return -EINVAL;
	}
	return 0;
}

/* Reads a PEM file whole (at most 1 MiB). A private key must be readable by its owner only. */
static char *read_pem(const char *path, bool private_key)
{
	enum { PEM_MAX = 1 << 20 };
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat sb;
	char *buf = NULL;
	const char *why = NULL;
	if (fd < 0 || fstat(fd, &sb) < 0)
		why = strerror(errno);
	else if (!S_ISREG(sb.st_mode))
		why = "not a regular file";
	else if (private_key && (sb.st_mode & (S_IRWXG | S_IRWXO)))
		why = "a private key must be mode 0600 or 0400 (chmod 600 it)";
	else if (sb.st_size <= 0 || sb.st_size > PEM_MAX)
		why = "expected a PEM file of at most 1 MiB";
	else if (!(buf = calloc(1, (size_t)sb.st_size + 1)))
		why = strerror(ENOMEM);
	else if (read(fd, buf, (size_t)sb.st_size) != sb.st_size)
		why = "could not read it whole";
	else if (!strstr(buf, "-----BEGIN "))
		why = "not PEM (no -----BEGIN line)";
	if (fd >= 0)
		close(fd);
	if (why) {
		fprintf(stderr, "uploadfs-server: %s %s: %s\n",
			private_key ? "--tls-key" : "--tls-cert", path, why);
		up_secret_free(buf);
		return NULL;
	}
	return buf;
}

/* "HOST:PORT", "[v6]:PORT" or ":PORT" into a socket address. */
static int resolve_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec + strlen(spec) - 1)
		return bad("--listen", spec, "expected HOST:PORT");
	size_t hlen = (size_t)(colon - spec);
	if (hlen >= sizeof host)
		return bad("--listen", spec, "host too long");
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	uint64_t port;
	if (up_parse_u64(colon + 1, &port) < 0 || port > 65535)
		return bad("--listen", spec, "bad port");
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0 || !res)
		return bad("--listen", spec, gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {
	    .listen = "127.0.0.1:8080",
	    .data = "./uploadfs-data",
	    .lim = {.max_part_bytes = 64ull << 20,
		    .max_upload_bytes = 8ull << 30,
		    .max_file_bytes = 512ull << 20,
		    .expire_seconds = 3600},
	    .seed = 1,
	    .fail_kind = SRV_FAIL_MIXED,
	};
	if (parse_args(argc, argv, &o) < 0)
		return 2;

	struct sockaddr_storage ss;
	socklen_t sslen;
	if (resolve_listen(o.listen, &ss, &sslen) < 0)
		return 2;

	int log_fd = -1;
	if (o.log_requests) {
		log_fd = open(o.log_requests, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (log_fd < 0) {
			fprintf(stderr, "uploadfs-server: cannot open %s: %s\n", o.log_requests,
				strerror(errno));
			return 1;
		}
	}

	/* Signals are taken by sigwait below; every thread started after this inherits the
	 * mask. A client that hangs up must not kill the server with SIGPIPE. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct srv_err err;
	struct srv_store *st = NULL;
	if (srv_store_open(o.data, &o.lim, &st, &err) < 0) {
		fprintf(stderr, "uploadfs-server: %s\n", err.message);
		return 1;
	}
	char *cert = NULL, *key = NULL;
	if (o.tls_cert && (!(cert = read_pem(o.tls_cert, false)) || !(key = read_pem(o.tls_key, true)))) {
		free(cert);
		srv_store_close(st);
		return 1;
	}
	struct srv_http_config hc = {
	    .tls_cert = cert,
	    .tls_key = key,
	    .addr = (const struct sockaddr *)&ss,
	    .addrlen = sslen,
	    .api_key = o.api_key,
	    .fail_rate = o.fail_rate,
	    .seed = o.seed,
	    .fail_first = o.fail_first,
	    .fail_kind = o.fail_kind,
	    .latency_ms = o.latency_ms,
	    .no_uploads = o.no_uploads,
	    .cut_downloads = o.cut_downloads,
	    .log_fd = log_fd,
	    .max_part_bytes = o.lim.max_part_bytes,
	    .max_file_bytes = o.lim.max_file_bytes,
	};
	struct srv_http *http = NULL;
	unsigned port = 0;
	int rc = srv_http_start(&hc, st, &http, &port);
	if (rc < 0) {
		if (rc == -EPROTO)
			fprintf(stderr, "uploadfs-server: cannot serve HTTPS on %s with %s and %s: "
					"they must be a certificate and its private key, in PEM\n",
				o.listen, o.tls_cert, o.tls_key);
		else
			fprintf(stderr, "uploadfs-server: cannot listen on %s: %s\n", o.listen,
				strerror(-rc));
		free(cert);
		up_secret_free(key);
		srv_store_close(st);
		return 1;
	}
	char host[INET6_ADDRSTRLEN] = "";
	if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
	const char *scheme = cert ? "https" : "http";
	printf(ss.ss_family == AF_INET6 ? "listening on %s://[%s]:%u/v1\n"
					: "listening on %s://%s:%u/v1\n",
	       scheme, host, port);
	fflush(stdout);

	int sig = 0;
	sigwait(&sigs, &sig);
	srv_http_stop(http);
	free(cert);
	up_secret_free(key); /* the daemon holds its own copy until it stops */
	srv_store_close(st);
	up_secret_free(o.api_key);
	if (log_fd >= 0)
		close(log_fd);
	return 0;
}
