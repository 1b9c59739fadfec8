/*
 * omnifsctl kv get|put|del (see kv_cli.h). Every put sends its value as
 * base64 (kv-put --base64): an argument of the control protocol ends at a
 * NUL byte, a value may hold any byte. Values over CTL_KV_MAX_VALUE are
 * refused here, before anything is sent (the daemon refuses them too).
 * `kv get --json` prints the value as base64 as well, always, so a script
 * reads any value the same way (jq -r .value | base64 -d).
 */
#include "kv_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "ctl.h"

int kv_cli_read_value(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	while (n <= max) {
		if (n == cap - 1) {
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				return -ENOMEM;
			}
			buf = p;
			cap *= 2;
		}
		size_t want = cap - 1 - n;
		if (want > max + 1 - n)
			want = max + 1 - n;
		ssize_t r = read(fd, buf + n, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

char *kv_cli_get_json(const char *key, const char *body, size_t len, char *err, size_t err_len)
{
	const char *nl = memchr(body, '\n', len);
	char vbuf[24];
	uint64_t version;
	size_t vlen = nl ? (size_t)(nl - body) : 0;
	if (!nl || vlen == 0 || vlen >= sizeof(vbuf)) {
		snprintf(err, err_len, "the daemon's answer has no version line");
		return NULL;
	}
	memcpy(vbuf, body, vlen);
	vbuf[vlen] = '\0';
	if (!cli_parse_u64(vbuf, 1, INT64_MAX, &version)) {
		snprintf(err, err_len, "the daemon's answer has a bad version: %s", vbuf);
		return NULL;
	}
	json_t *jkey = json_string(key);
	if (!jkey) {
		snprintf(err, err_len, "the key is not UTF-8 text, which JSON cannot hold");
		return NULL;
	}
	char *b64 = ctl_b64_encode(nl + 1, len - vlen - 1);
	json_t *o = json_object();
	char *text = NULL;
	if (b64 && o && json_object_set_new(o, "key", jkey) == 0) {
		jkey = NULL;
		if (json_object_set_new(o, "version", json_integer((json_int_t)version)) == 0 &&
		    json_object_set_new(o, "value", json_string(b64)) == 0)
			text = json_dumps(o, JSON_COMPACT);
	}
	json_decref(jkey);
	json_decref(o);
	free(b64);
	if (!text) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	size_t tl = strlen(text);
	char *line = realloc(text, tl + 2);
	if (!line) {
		free(text);
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	memcpy(line + tl, "\n", 2);
	return line;
}

static int usage_err(const char *what, const char *msg)
{
	fprintf(stderr, "omnifsctl: kv %s: %s (see omnifsctl --help)\n", what, msg);
	return CLI_EXIT_USAGE;
}

/* The value of a put from a file ("-": standard input) into *out. Returns
 * 0 or an exit status after a message. */
static int value_from(const char *path, char **out, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "omnifsctl: kv put: %s: %s\n", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	int rc = kv_cli_read_value(fd, CTL_KV_MAX_VALUE, out, len);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc == -EFBIG) {
		fprintf(stderr,
			"omnifsctl: kv put: the value in %s is more than %u bytes (1 MiB), "
			"the limit of a kv value\n",
			strcmp(path, "-") == 0 ? "standard input" : path, CTL_KV_MAX_VALUE);
		return CLI_EXIT_USAGE;
	}
	if (rc != 0) {
		fprintf(stderr, "omnifsctl: kv put: reading %s: %s\n", path, strerror(-rc));
		return rc == -ENOMEM ? 1 : CLI_EXIT_USAGE;
	}
	return 0;
}

/* One request to the daemon and the exit status; prints the body on
 * success if show (raw: a value may hold any byte), else the reason. */
static int call(const char *sock, uint32_t wait_ms, const char *what, int nargs, char **args,
		bool show, bool json, const char *key)
{
	uint32_t status;
	char *body;
	size_t body_len;
	char err[512];
	if (ctl_call(sock, nargs, args, wait_ms, &status, &body, &body_len, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "omnifsctl: %s\n", err);
		return 3;
	}
	int st = 0;
	if (status == ECANCELED) {
		/* A guard that did not hold: the daemon says which version it met. */
		fprintf(stderr, "omnifsctl: kv %s: %s%s", what, body,
			body_len && body[body_len - 1] == '\n' ? "" : "\n");
		st = KV_CLI_EXIT_MISMATCH;
	} else if (status != 0) {
		fprintf(stderr, "omnifsctl: kv %s: %s%s%s", what, strerror((int)status),
			body_len ? ": " : "\n", body_len ? body : "");
		if (body_len && body[body_len - 1] != '\n')
			fputc('\n', stderr);
		st = status == EINVAL || status == EFBIG ? CLI_EXIT_USAGE : 1;
	} else if (json) {
		char *line = kv_cli_get_json(key, body, body_len, err, sizeof(err));
		if (line)
			fputs(line, stdout);
		else
			fprintf(stderr, "omnifsctl: kv get --json: %s\n", err);
		st = line ? 0 : 1;
		free(line);
	} else if (show) {
		fwrite(body, 1, body_len, stdout);
	}
	free(body);
	if (fflush(stdout) != 0 && st == 0) {
		fprintf(stderr, "omnifsctl: kv %s: writing the output: %s\n", what,
			strerror(errno));
		st = 1;
	}
	return st;
}

int kv_cli_main(const char *sock, uint32_t wait_ms, int argc, char **argv)
{
	const char *what = argv[0];
	bool get = strcmp(what, "get") == 0, put = strcmp(what, "put") == 0;
	bool del = strcmp(what, "del") == 0;
	bool version = false, json = false, from_stdin = false, if_absent = false;
	const char *if_version = NULL, *file = NULL;
	uint64_t v;
	int i = 1;
	if (!get && !put && !del)
		return usage_err(what, "no such kv command");
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i];
		bool has_arg = i + 1 < argc;
		if (strcmp(o, "--") == 0) {
			i++;
			break;
		} else if (strcmp(o, "--version") == 0 && (get || put)) {
			version = true;
		} else if (strcmp(o, "--json") == 0 && get) {
			json = true;
		} else if (strcmp(o, "--stdin") == 0 && put) {
			from_stdin = true;
		} else if (strcmp(o, "--file") == 0 && put && has_arg) {
			file = argv[++i];
		} else if (strcmp(o, "--if-absent") == 0 && put) {
			if_absent = true;
		} else if (strcmp(o, "--if-version") == 0 && (put || del) && has_arg) {
			if_version = argv[++i];
			if (!cli_parse_u64(if_version, del ? 1 : 0, UINT64_MAX, &v))
				return usage_err(what,
						 del ? "--if-version takes a version, 1 or more"
						     : "--if-version takes a version, 0 or "
						       "more");
		} else {
			fprintf(stderr, "omnifsctl: kv %s: unknown option or missing value: %s\n",
				what, o);
			return CLI_EXIT_USAGE;
		}
	}
	if (if_absent && if_version)
		return usage_err(what, "--if-absent and --if-version exclude each other");
	if (from_stdin && file)
		return usage_err(what, "--stdin and --file exclude each other");
	bool value_arg = put && !from_stdin && !file;
	if (argc - i != (value_arg ? 2 : 1))
		return usage_err(what, put ? "takes KEY VALUE, KEY - or --stdin|--file F KEY"
					   : "takes one KEY");
	const char *key = argv[i];

	char *args[8];
	int nargs = 0;
	char cmd[8];
	snprintf(cmd, sizeof(cmd), "kv-%s", what);
	args[nargs++] = cmd;
	if (get) {
		if (version || json)
			args[nargs++] = "--version";
		args[nargs++] = (char *)key;
		return call(sock, wait_ms, what, nargs, args, true, json, key);
	}
	if (if_absent || if_version) {
		args[nargs++] = "--if-version";
		args[nargs++] = if_absent ? "0" : (char *)if_version;
	}
	if (del) {
		args[nargs++] = "--";
		args[nargs++] = (char *)key;
		return call(sock, wait_ms, what, nargs, args, false, false, key);
	}

	char *value = NULL;
	size_t len;
	if (from_stdin || file || strcmp(argv[i + 1], "-") == 0) {
		int st = value_from(file ? file : "-", &value, &len);
		if (st)
			return st;
	} else {
		len = strlen(argv[i + 1]);
		if (len > CTL_KV_MAX_VALUE) {
			fprintf(stderr,
				"omnifsctl: kv put: the value is %zu bytes, more than the limit "
				"of %u (1 MiB)\n",
				len, CTL_KV_MAX_VALUE);
			return CLI_EXIT_USAGE;
		}
	}
	char *b64 = ctl_b64_encode(value ? value : argv[i + 1], len);
	free(value);
	if (!b64) {
		fprintf(stderr, "omnifsctl: kv put: out of memory\n");
		return 1;
	}
	args[nargs++] = "--base64";
	args[nargs++] = "--";
	args[nargs++] = (char *)key;
	args[nargs++] = b64;
	int st = call(sock, wait_ms, what, nargs, args, version, false, key);
	free(b64);
	return st;
}
