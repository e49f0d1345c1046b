#include "client.h"

#include "errors.h"
#include "secret.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define OPENAI_BASE  "https://api.openai.com/v1"
#define PORTKEY_BASE "https://api.portkey.ai/v1"

const char *up_version(void)
{
	return UP_VERSION;
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static const char *env(const struct up_config *cfg, const char *name)
{
	if (cfg->no_env)
		return NULL;
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

bool up_url_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool loop = false;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		loop = strncmp(host, "127.", 4) == 0 || strcmp(host, "[::1]") == 0 ||
		       strcasecmp(host, "localhost") == 0;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return loop;
}

static int check_base(const char *base, bool allow_http, struct up_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	int rc = 0;
	if (!u)
		return up_error_set(err, -ENOMEM, 0, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		rc = up_error_set(err, -EINVAL, 0, "api_base '%s' is not a URL", base);
	else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
		rc = up_error_set(err, -EINVAL, 0, "api_base '%s' must be http:// or https://",
				  base);
	else if (strcmp(scheme, "http") == 0 && !allow_http && !up_url_is_loopback(base))
		rc = up_error_set(err, -EPERM, 0,
				  "api_base '%s' is plain http to a host that is not loopback; "
				  "use https, or allow it explicitly (allow_http)",
				  base);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

/* A Portkey setting: the config's field when given ("" for none), else the environment. */
static const char *portkey_setting(const struct up_config *cfg, const char *field, const char *name)
{
	if (field)
		return *field ? field : NULL;
	return env(cfg, name);
}

/* The Portkey headers, in the order they are sent. */
enum { PK_VIRTUAL_KEY, PK_PROVIDER, PK_CONFIG, PK_CUSTOM_HOST, PK_N };
static const char *const pk_header[PK_N] = {"x-portkey-virtual-key", "x-portkey-provider",
					    "x-portkey-config", "x-portkey-custom-host"};

static void portkey_settings(const struct up_config *cfg, const char *v[PK_N])
{
	v[PK_VIRTUAL_KEY] = portkey_setting(cfg, cfg->portkey_virtual_key, "PORTKEY_VIRTUAL_KEY");
	v[PK_PROVIDER] = portkey_setting(cfg, cfg->portkey_provider, "PORTKEY_PROVIDER");
	v[PK_CONFIG] = portkey_setting(cfg, cfg->portkey_config, "PORTKEY_CONFIG");
	v[PK_CUSTOM_HOST] = portkey_setting(cfg, cfg->portkey_custom_host, "PORTKEY_CUSTOM_HOST");
}

/* Portkey: "with a Portkey key and no OpenAI key, no Authorization header is sent". */
struct keys {
	char *openai;
	char *portkey;
};

static int resolve_keys(const struct up_config *cfg, const char *const pk[PK_N], struct keys *k,
			bool *portkey, struct up_error *err)
{
	const char *openai_env = env(cfg, "OPENAI_API_KEY");
	const char *portkey_env = portkey_setting(cfg, cfg->portkey_api_key, "PORTKEY_API_KEY");
	/* Portkey mode: a Portkey key, or Portkey routing with no OpenAI key. */
	*portkey = portkey_env || (!openai_env && !cfg->api_key &&
				   (pk[PK_VIRTUAL_KEY] || pk[PK_PROVIDER] || pk[PK_CONFIG] ||
				    env(cfg, "PORTKEY_BASE_URL")));
	char *file_key = NULL;
	if (cfg->api_key_file) {
		char why[512];
		int rc = up_secret_read_file(cfg->api_key_file, &file_key, why, sizeof why);
		if (rc < 0)
			return up_error_set(err, rc, 0, "%s", why);
	}
	/* The key file stands for the OpenAI key, or for the Portkey key when Portkey is
	 * used without one in the environment. */
	if (file_key && *portkey && !portkey_env) {
		k->portkey = file_key;
		file_key = NULL;
	}
	const char *openai = file_key ? file_key : cfg->api_key ? cfg->api_key : openai_env;
	if (openai && !(k->openai = strdup(openai))) {
		up_secret_free(file_key);
		return up_error_set(err, -ENOMEM, 0, "out of memory");
	}
	up_secret_free(file_key);
	if (portkey_env && !(k->portkey = strdup(portkey_env)))
		return up_error_set(err, -ENOMEM, 0, "out of memory");
	return 0;
}

static char *header_line(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s: %s", name, value);
	return s;
}

int up_client_new(const struct up_config *cfg_in, up_client **out, struct up_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, curl_init_once);
	struct up_config none = {0};
	const struct up_config *cfg = cfg_in ? cfg_in : &none;

	struct keys k = {0};
	bool portkey = false;
	const char *pk[PK_N];
	portkey_settings(cfg, pk);
	int rc = resolve_keys(cfg, pk, &k, &portkey, err);
	const char *base = cfg->api_base ? cfg->api_base : env(cfg, "OPENAI_BASE_URL");
	if (!base && portkey)
		base = env(cfg, "PORTKEY_BASE_URL") ? env(cfg, "PORTKEY_BASE_URL") : PORTKEY_BASE;
	if (!base)
		base = OPENAI_BASE;
	if (rc == 0)
		rc = check_base(base, cfg->allow_http, err);
	/* libcurl reads its CA bundle only at the first TLS connection: a wrong path would
	 * show as a verification failure then, so it is checked here, by name. */
	const char *ca = cfg->ca_file ? cfg->ca_file : env(cfg, "SSL_CERT_FILE");
	if (rc == 0 && ca && access(ca, R_OK) < 0)
		rc = up_error_set(err, -errno, 0, "cannot read the CA file %s (%s): %s", ca,
				  cfg->ca_file ? "ca_file" : "$SSL_CERT_FILE", strerror(errno));

	up_client *c = NULL;
	char *hdr[8] = {0};
	size_t nh = 0;
	if (rc == 0 && !(c = calloc(1, sizeof *c)))
		rc = up_error_set(err, -ENOMEM, 0, "out of memory");
	if (rc == 0 && !(c->base = strdup(base)))
		rc = up_error_set(err, -ENOMEM, 0, "out of memory");
	if (rc == 0) {
		size_t bl = strlen(c->base);
		while (bl > 0 && c->base[bl - 1] == '/')
			c->base[--bl] = '\0';
		if (k.portkey)
			hdr[nh++] = header_line("x-portkey-api-key", k.portkey);
		for (size_t i = 0; i < PK_N; i++)
			if (pk[i])
				hdr[nh++] = header_line(pk_header[i], pk[i]);
		for (size_t i = 0; i < nh; i++)
			if (!hdr[i])
				rc = up_error_set(err, -ENOMEM, 0, "out of memory");
	}
	if (rc == 0) {
		const char *secrets[4] = {0};
		size_t ns = 0;
		if (k.openai)
			secrets[ns++] = k.openai;
		if (k.portkey)
			secrets[ns++] = k.portkey;
		if (pk[PK_VIRTUAL_KEY])
			secrets[ns++] = pk[PK_VIRTUAL_KEY];
		struct up_http_opts ho = {
		    .base = c->base,
		    .bearer = k.openai,
		    .headers = (const char *const *)hdr,
		    .secrets = secrets,
		    .retries = cfg->retries < 0 ? 0
			       : cfg->retries	? cfg->retries
						: 5,
		    .timeout = cfg->timeout ? cfg->timeout : 60,
		    .retry_window = cfg->retry_window < 0   ? 0
				    : cfg->retry_window ? (unsigned)cfg->retry_window
							: 300,
		    .ca_file = ca,
		    .log = cfg->log,
		    .log_ud = cfg->log_ud,
		    .level = cfg->log_level,
		};
		if ((rc = up_http_new(&ho, &c->http)) < 0)
			rc = up_error_set(err, rc, 0, "cannot set up HTTP: %s", strerror(-rc));
	}
	for (size_t i = 0; i < nh; i++)
		up_secret_free(hdr[i]);
	up_secret_free(k.openai);
	up_secret_free(k.portkey);
	if (rc < 0) {
		up_client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void up_client_free(up_client *c)
{
	if (!c)
		return;
	up_http_free(c->http);
	free(c->base);
	free(c);
}

const char *up_client_base(const up_client *c)
{
	return c->base;
}

void up_client_away(const up_client *c, struct up_away *out)
{
	up_http_away(c->http, out);
}

bool up_client_files_only(up_client *c)
{
	return atomic_load(&c->files_only);
}

void up_client_mark_files_only(up_client *c)
{
	if (!atomic_exchange(&c->files_only, true))
		up_http_log(c->http, UP_LOG_WARN,
			    "%s answers /uploads with 404: a Files-only server; files up to "
			    "512 MiB go up with one POST /files from now on, larger ones fail",
			    c->base);
}
