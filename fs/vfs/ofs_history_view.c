/*
 * /.omnifs/history/: the read-only view of the versions that
 * ofs_history.c keeps.
 *
 * /.omnifs/history mirrors the tree; each directory lists the
 * names of the live directory at that path and of deleted files kept below
 * it; a path that had versions (the live file's and those of every inode
 * kept under that path, so a file deleted and created again shows both)
 * lists them as files named by index, plus .versions.json (index, time,
 * node, uid, size, deleted, ino, mode). Its inode numbers are node-local (a table of
 * HIST_SLOTS entries: one forgotten by reuse answers ESTALE). A version
 * file has the mode bits (read only) and owner of the file it was, and a
 * directory of the view those of what lives at its path (view_access), so
 * the kernel's permission check keeps private files and names private.
 */
#include "ofs_history.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "byteorder.h"
#include "kv.h"
#include "ofs_int.h"

#define HIST_SLOTS	 4096		      /* view inodes remembered per node */
#define HIST_VINO_FIRST	 16		      /* view inodes count up from here (node 0's range) */
#define VERSION_READ_MAX (UINT64_C(64) << 20) /* max_file_kb's top: larger is corrupt */

/* --- the view ------------------------------------------------------------------------- */

enum hnode_kind { HN_DIR = 1, HN_VERSION, HN_INDEX };

struct hnode {
	uint64_t vino; /* 0: empty slot */
	enum hnode_kind kind;
	char *path;	   /* "" for /.omnifs/history itself, else "/a/b" */
	uint64_t ino, idx; /* HN_VERSION */
};

struct ofs_hist {
	pthread_mutex_t lock; /* the table and next; a leaf */
	uint64_t next;
	struct hnode slot[HIST_SLOTS];
};

struct ofs_hist *ofs_hist_new(void)
{
	struct ofs_hist *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->next = HIST_VINO_FIRST;
	return h;
}

void ofs_hist_destroy(struct ofs_hist **hp)
{
	struct ofs_hist *h = *hp;
	if (!h)
		return;
	for (size_t i = 0; i < HIST_SLOTS; i++)
		free(h->slot[i].path);
	pthread_mutex_destroy(&h->lock);
	free(h);
	*hp = NULL;
}

bool ofs_hist_is_vino(uint64_t ino)
{
	return ino == OFS_VINO_HISTORY || (ino >= HIST_VINO_FIRST && ofs_ino_node(ino) == 0);
}

/* The view inode of (kind, path, ino, idx): the one it has, or a new one. */
static int hist_vino(struct ofs *o, enum hnode_kind kind, const char *path, uint64_t ino,
		     uint64_t idx, uint64_t *vino)
{
	if (kind == HN_DIR && path[0] == '\0') {
		*vino = OFS_VINO_HISTORY;
		return 0;
	}
	struct ofs_hist *h = o->hist;
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < HIST_SLOTS; i++) {
		struct hnode *s = &h->slot[i];
		if (s->vino && s->kind == kind && s->ino == ino && s->idx == idx &&
		    strcmp(s->path, path) == 0) {
			*vino = s->vino;
			pthread_mutex_unlock(&h->lock);
			return 0;
		}
	}
	char *copy = strdup(path);
	if (!copy) {
		pthread_mutex_unlock(&h->lock);
		return -ENOMEM;
	}
	uint64_t v = h->next++;
	struct hnode *s = &h->slot[v % HIST_SLOTS];
	free(s->path);
	*s = (struct hnode){v, kind, copy, ino, idx};
	*vino = v;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* A copy of vino's node (path malloc'd), or -ESTALE if forgotten. */
static int hist_node(struct ofs *o, uint64_t vino, struct hnode *out)
{
	if (vino == OFS_VINO_HISTORY) {
		*out = (struct hnode){vino, HN_DIR, strdup(""), 0, 0};
		return out->path ? 0 : -ENOMEM;
	}
	struct ofs_hist *h = o->hist;
	if (!h)
		return -ESTALE;
	pthread_mutex_lock(&h->lock);
	struct hnode *s = &h->slot[vino % HIST_SLOTS];
	int rc = -ESTALE;
	if (s->vino == vino) {
		*out = *s;
		out->path = strdup(s->path);
		rc = out->path ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* The live inode at path ("" or "/a/b"): 0 and *ino, *dtype; -ENOENT. */
static int resolve(struct ofs *o, const char *path, uint64_t *ino, uint8_t *dtype)
{
	uint64_t cur = OFS_ROOT_INO;
	uint8_t dt = DT_DIR;
	const char *p = path;
	while (*p) {
		p++; /* the '/' */
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (dt != DT_DIR || len == 0 || len > OFS_NAME_MAX)
			return -ENOENT;
		int rc = ofs_read_dirent(o, cur, p, len, &cur, &dt, NULL);
		if (rc)
			return rc;
		p += len;
	}
	*ino = cur;
	*dtype = dt;
	return 0;
}

/* One version of a path: where it is and what it is. */
struct hver {
	uint64_t ino, idx;
	struct ofs_hversion v;
};

struct hver_list {
	struct hver *v;
	size_t n, cap;
	uint64_t *inos; /* the inodes kept under the path */
	size_t n_inos, cap_inos;
};

static int push_ino(struct hver_list *l, uint64_t ino)
{
	for (size_t i = 0; i < l->n_inos; i++)
		if (l->inos[i] == ino)
			return 0;
	if (l->n_inos == l->cap_inos) {
		size_t cap = l->cap_inos ? 2 * l->cap_inos : 8;
		uint64_t *p = realloc(l->inos, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->inos = p;
		l->cap_inos = cap;
	}
	l->inos[l->n_inos++] = ino;
	return 0;
}

static int collect_path_inos(void *arg, const void *key, size_t key_len, const void *val,
			     size_t val_len, uint64_t version)
{
	(void)val;
	(void)val_len;
	(void)version;
	const char *p;
	size_t pl;
	uint64_t ino;
	if (ofs_hkey_parse_path(key, key_len, &p, &pl, &ino))
		return 0;
	return push_ino(arg, ino);
}

static int collect_hver(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
			uint64_t version)
{
	(void)version;
	struct hver_list *l = arg;
	struct hver h;
	if (ofs_hkey_parse(key, key_len, &h.ino, &h.idx) != 1 ||
	    ofs_hversion_decode(&h.v, val, val_len))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct hver *p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = h;
	return 0;
}

static int by_idx(const void *a, const void *b)
{
	const struct hver *x = a, *y = b;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void hver_list_free(struct hver_list *l)
{
	free(l->v);
	free(l->inos);
	memset(l, 0, sizeof(*l));
}

/* Every version of path: of the live regular file there and of each inode
 * kept under the path, sorted by index. */
static int versions_of(struct ofs *o, const char *path, struct hver_list *l)
{
	memset(l, 0, sizeof(*l));
	if (!path[0])
		return 0;
	uint64_t ino;
	uint8_t dt;
	int rc = resolve(o, path, &ino, &dt);
	if (rc == 0 && dt == DT_REG)
		rc = push_ino(l, ino);
	else if (rc == -ENOENT)
		rc = 0;
	struct ofs_hkey k;
	if (!rc && ofs_hkey_path_prefix(&k, path, strlen(path), true) == 0)
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_path_inos, l);
	for (size_t i = 0; i < l->n_inos && !rc; i++) {
		ofs_hkey_versions_prefix(&k, l->inos[i]);
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_hver, l);
	}
	if (rc) {
		hver_list_free(l);
		return rc;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_idx);
	return 0;
}

/* A file's read bits as a directory's r-x: who may read the file may list
 * its versions. */
static uint32_t read_as_list(uint32_t mode)
{
	return (mode & 0444) | ((mode & 0444) >> 2);
}

/*
 * Who may list the view's directory of path (and read its .versions.json):
 * those who may list or read what lives at path now (a directory's mode and
 * owner; a file's read bits), else those who could read the newest version
 * kept there, else (a directory gone with all below it) root only. So the
 * names, sizes and writers of private files stay as private as the files.
 */
static void view_access(struct ofs *o, const char *path, struct ofs_attr *a)
{
	uint64_t ino;
	uint8_t dt;
	struct ofs_attr live;
	struct hver_list l;
	a->mode = S_IFDIR | 0500;
	a->uid = a->gid = 0;
	if (resolve(o, path, &ino, &dt) == 0 && ofs_read_attr(o, ino, &live, NULL) == 0) {
		a->mode = S_IFDIR | (dt == DT_DIR ? live.mode & 0555 : read_as_list(live.mode));
		a->uid = live.uid;
		a->gid = live.gid;
	} else if (path[0] && versions_of(o, path, &l) == 0) {
		if (l.n) {
			const struct ofs_hversion *v = &l.v[l.n - 1].v;
			a->mode = S_IFDIR | read_as_list(v->mode);
			a->uid = v->uid;
			a->gid = v->gid;
		}
		hver_list_free(&l);
	}
}

static void fill_dir(struct ofs *o, struct ofs_attr *a, uint64_t vino, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->ino = vino;
	view_access(o, path, a);
	a->nlink = 2;
	a->atime_ns = a->mtime_ns = a->ctime_ns = ofs_now_ns();
	a->parent = OFS_VINO_DIR;
}

static void fill_version(struct ofs_attr *a, uint64_t vino, const struct ofs_hversion *v)
{
	memset(a, 0, sizeof(*a));
	a->ino = vino;
	a->mode = S_IFREG | (v->mode & 0444);
	a->uid = v->uid;
	a->gid = v->gid;
	a->nlink = 1;
	a->size = v->size;
	a->atime_ns = a->mtime_ns = a->ctime_ns = v->time_ns;
}

/* Renders the .versions.json of path into *out (malloc'd). */
static int render_index(struct ofs *o, const char *path, char **out, size_t *len)
{
	struct hver_list l;
	int rc = versions_of(o, path, &l);
	if (rc)
		return rc;
	size_t cap = 64 + l.n * 240;
	char *buf = malloc(cap);
	if (!buf) {
		hver_list_free(&l);
		return -ENOMEM;
	}
	size_t n = (size_t)snprintf(buf, cap, "[");
	for (size_t i = 0; i < l.n; i++) {
		const struct hver *h = &l.v[i];
		n += (size_t)snprintf(buf + n, cap - n,
				      "%s\n {\"index\": %" PRIu64 ", \"time_ms\": %" PRId64
				      ", \"node\": %" PRIu64 ", \"uid\": %u, \"size\": %" PRIu64
				      ", \"deleted\": %s, \"ino\": %" PRIu64 ", \"mode\": %u}",
				      i ? "," : "", h->idx, h->v.time_ns / 1000000, h->v.node,
				      h->v.writer_uid, h->v.size, h->v.deleted ? "true" : "false",
				      h->ino, h->v.mode & 07777);
	}
	n += (size_t)snprintf(buf + n, cap - n, "%s]\n", l.n ? "\n" : "");
	hver_list_free(&l);
	*out = buf;
	*len = n;
	return 0;
}

/* The version named name (decimal index) of path, into *h. */
static int find_version(struct ofs *o, const char *path, const char *name, struct hver *h)
{
	char *end;
	errno = 0;
	unsigned long long idx = strtoull(name, &end, 10);
	if (!name[0] || *end || errno || name[0] < '1' || name[0] > '9')
		return -ENOENT;
	struct hver_list l;
	int rc = versions_of(o, path, &l);
	if (rc)
		return rc;
	rc = -ENOENT;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].idx == idx) {
			*h = l.v[i];
			rc = 0;
		}
	hver_list_free(&l);
	return rc;
}

struct has_below {
	bool found;
};

static int stop_at_first(void *arg, const void *key, size_t key_len, const void *val,
			 size_t val_len, uint64_t version)
{
	(void)key, (void)key_len, (void)val, (void)val_len, (void)version;
	((struct has_below *)arg)->found = true;
	return 1;
}

/* Is path a directory of the view: live there, or something kept at or below it? */
static int is_view_dir(struct ofs *o, const char *path)
{
	uint64_t ino;
	uint8_t dt;
	int rc = resolve(o, path, &ino, &dt);
	if (rc != -ENOENT)
		return rc ? rc : 1;
	struct ofs_hkey k;
	struct has_below hb = {false};
	if (ofs_hkey_path_prefix(&k, path, strlen(path), true) == 0) {
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, stop_at_first, &hb);
		if (rc)
			return rc;
	}
	char *below = malloc(strlen(path) + 2);
	if (!below)
		return -ENOMEM;
	sprintf(below, "%s/", path);
	if (!hb.found && ofs_hkey_path_prefix(&k, below, strlen(below), false) == 0)
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, stop_at_first, &hb);
	free(below);
	return rc ? rc : hb.found;
}

int ofs_hist_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out)
{
	struct hnode pn;
	int rc = hist_node(o, parent, &pn);
	if (rc)
		return rc;
	if (pn.kind != HN_DIR) {
		free(pn.path);
		return -ENOTDIR;
	}
	uint64_t vino;
	struct hver h;
	size_t nl = strlen(name);
	if (strcmp(name, OFS_HIST_VERSIONS_JSON) == 0 && pn.path[0]) {
		rc = hist_vino(o, HN_INDEX, pn.path, 0, 0, &vino);
		if (!rc)
			rc = ofs_hist_getattr(o, vino, out);
	} else if (pn.path[0] && find_version(o, pn.path, name, &h) == 0) {
		rc = hist_vino(o, HN_VERSION, pn.path, h.ino, h.idx, &vino);
		if (!rc)
			fill_version(out, vino, &h.v);
	} else if (nl == 0 || nl > OFS_NAME_MAX || strlen(pn.path) + 1 + nl > OFS_HIST_PATH_MAX) {
		rc = -ENOENT;
	} else {
		char *path = malloc(strlen(pn.path) + nl + 2);
		if (!path) {
			free(pn.path);
			return -ENOMEM;
		}
		sprintf(path, "%s/%s", pn.path, name);
		rc = is_view_dir(o, path);
		if (rc == 0)
			rc = -ENOENT;
		if (rc == 1)
			rc = hist_vino(o, HN_DIR, path, 0, 0, &vino);
		if (rc == 0)
			fill_dir(o, out, vino, path);
		free(path);
	}
	free(pn.path);
	return rc;
}

/* Reads a version's content into a malloc'd buffer of v->size bytes. */
struct data_read {
	uint8_t *buf;
	uint64_t size, ino, idx;
};

/* A block of the version: an F v key, or the inode's own F b key for a
 * version kept in place (ofs_history.c). */
static int read_block(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		      uint64_t version)
{
	(void)version;
	struct data_read *d = arg;
	const uint8_t *k = key;
	uint64_t ino, blk;
	if (key_len == 26)
		blk = get_be64(k + 18);
	else if (ofs_key_parse_block(key, key_len, &ino, &blk))
		return 0;
	if (blk >= UINT64_MAX / OFS_BLOCK_SIZE)
		return 0;
	uint64_t off = blk * OFS_BLOCK_SIZE;
	if (off >= d->size)
		return 0;
	size_t n = d->size - off < val_len ? (size_t)(d->size - off) : val_len;
	memcpy(d->buf + off, val, n);
	return 0;
}

static int render_version(struct ofs *o, const struct hnode *hn, char **out, size_t *len)
{
	struct ofs_hkey k;
	ofs_hkey_version(&k, hn->ino, hn->idx);
	void *val;
	size_t vl;
	int rc = ofs_kv_get(o, k.b, k.len, &val, &vl, NULL);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	struct ofs_hversion v;
	rc = ofs_hversion_decode(&v, val, vl);
	free(val);
	if (rc)
		return -EIO;
	if (v.size > VERSION_READ_MAX)
		return -EIO;
	struct data_read d = {calloc(1, v.size ? v.size : 1), v.size, hn->ino, hn->idx};
	if (!d.buf)
		return -ENOMEM;
	if (v.in_place) {
		struct ofs_key fk;
		ofs_key_block_prefix(&fk, hn->ino);
		rc = ofs_kv_scan(o, fk.b, fk.len, NULL, 0, read_block, &d);
	} else {
		ofs_hkey_data_prefix(&k, hn->ino, hn->idx);
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, read_block, &d);
	}
	if (rc) {
		free(d.buf);
		return rc;
	}
	*out = (char *)d.buf;
	*len = v.size;
	return 0;
}

int ofs_hist_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out)
{
	struct hnode hn;
	int rc = hist_node(o, ino, &hn);
	if (rc)
		return rc;
	if (hn.kind == HN_DIR) {
		fill_dir(o, out, ino, hn.path);
	} else if (hn.kind == HN_INDEX) {
		char *buf;
		size_t len;
		rc = render_index(o, hn.path, &buf, &len);
		if (!rc) {
			free(buf);
			fill_dir(o, out, ino, hn.path);
			out->mode = S_IFREG | (out->mode & 0444);
			out->nlink = 1;
			out->size = len;
			out->parent = 0;
		}
	} else {
		struct ofs_hkey k;
		ofs_hkey_version(&k, hn.ino, hn.idx);
		void *val;
		size_t vl;
		struct ofs_hversion v;
		rc = ofs_kv_get(o, k.b, k.len, &val, &vl, NULL);
		if (rc == -ENOENT)
			rc = -ESTALE; /* trimmed */
		if (!rc) {
			rc = ofs_hversion_decode(&v, val, vl) ? -EIO : 0;
			free(val);
		}
		if (!rc)
			fill_version(out, ino, &v);
	}
	free(hn.path);
	return rc;
}

int ofs_hist_open(struct ofs *o, uint64_t ino, char **buf, size_t *len)
{
	struct hnode hn;
	int rc = hist_node(o, ino, &hn);
	if (rc)
		return rc;
	if (hn.kind == HN_DIR)
		rc = -EISDIR;
	else if (hn.kind == HN_INDEX)
		rc = render_index(o, hn.path, buf, len);
	else
		rc = render_version(o, &hn, buf, len);
	free(hn.path);
	return rc;
}

static bool list_has(const struct ofs_dirent_list *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->items[i].name) == len && memcmp(l->items[i].name, name, len) == 0)
			return true;
	return false;
}

struct dir_fill {
	struct ofs_dirent_list *l;
	const char *prefix; /* "<path>/" */
	size_t prefix_len;
};

static int add_live_name(void *arg, const void *key, size_t key_len, const void *val,
			 size_t val_len, uint64_t version)
{
	(void)val, (void)val_len, (void)version;
	struct dir_fill *f = arg;
	uint64_t parent;
	const char *name;
	size_t len;
	if (ofs_key_parse_dirent(key, key_len, &parent, &name, &len))
		return 0;
	return ofs_dirent_list_add(f->l, OFS_VINO_HISTORY, DT_DIR, name, len);
}

static int add_kept_name(void *arg, const void *key, size_t key_len, const void *val,
			 size_t val_len, uint64_t version)
{
	(void)val, (void)val_len, (void)version;
	struct dir_fill *f = arg;
	const char *p;
	size_t pl;
	uint64_t ino;
	if (ofs_hkey_parse_path(key, key_len, &p, &pl, &ino) || pl <= f->prefix_len)
		return 0;
	const char *name = p + f->prefix_len, *slash = memchr(name, '/', pl - f->prefix_len);
	size_t len = slash ? (size_t)(slash - name) : pl - f->prefix_len;
	if (len == 0 || len > OFS_NAME_MAX || list_has(f->l, name, len))
		return 0;
	return ofs_dirent_list_add(f->l, OFS_VINO_HISTORY, DT_DIR, name, len);
}

int ofs_hist_opendir(struct ofs *o, uint64_t ino, struct ofs_dirent_list **out)
{
	struct hnode hn;
	int rc = hist_node(o, ino, &hn);
	if (rc)
		return rc;
	if (hn.kind != HN_DIR) {
		free(hn.path);
		return -ENOTDIR;
	}
	struct ofs_dirent_list *l = calloc(1, sizeof(*l));
	char *prefix = malloc(strlen(hn.path) + 2);
	if (!l || !prefix) {
		rc = -ENOMEM;
		goto fail;
	}
	sprintf(prefix, "%s/", hn.path);
	rc = ofs_dirent_list_add(l, ino, DT_DIR, ".", 1);
	if (!rc)
		rc = ofs_dirent_list_add(l, OFS_VINO_DIR, DT_DIR, "..", 2);
	/* the live directory's names */
	uint64_t live;
	uint8_t dt;
	int r = resolve(o, hn.path, &live, &dt);
	struct dir_fill f = {l, prefix, strlen(prefix)};
	if (!rc && r == 0 && dt == DT_DIR) {
		struct ofs_key k;
		ofs_key_dir_prefix(&k, live);
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, add_live_name, &f);
	} else if (!rc && r && r != -ENOENT) {
		rc = r;
	}
	/* names kept below it */
	struct ofs_hkey k;
	if (!rc && ofs_hkey_path_prefix(&k, prefix, strlen(prefix), false) == 0)
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, add_kept_name, &f);
	/* its versions */
	struct hver_list vl = {0};
	if (!rc && hn.path[0])
		rc = versions_of(o, hn.path, &vl);
	for (size_t i = 0; !rc && i < vl.n; i++) {
		char name[24];
		int n = snprintf(name, sizeof(name), "%" PRIu64, vl.v[i].idx);
		if (!list_has(l, name, (size_t)n))
			rc = ofs_dirent_list_add(l, OFS_VINO_HISTORY, DT_REG, name, (size_t)n);
	}
	if (!rc && vl.n)
		rc = ofs_dirent_list_add(l, OFS_VINO_HISTORY, DT_REG, OFS_HIST_VERSIONS_JSON,
					 strlen(OFS_HIST_VERSIONS_JSON));
	hver_list_free(&vl);
	/* Entries carry one placeholder inode (readdir's d_ino is advisory;
	 * lookup gives the real one): allocating a view inode per listed name
	 * would churn the table for nothing. */
	if (rc)
		goto fail;
	free(prefix);
	free(hn.path);
	*out = l;
	return 0;
fail:
	if (l)
		ofs_dirent_list_free(l);
	free(prefix);
	free(hn.path);
	return rc;
}
