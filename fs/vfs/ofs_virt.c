/*
 * The reserved directory /.omnifs/: status.json and members.json, rendered
 * from the daemon's status source, metrics (the same source: this node's
 * metrics in the Prometheus text format, for node_exporter's textfile
 * collector to copy), and history/, the view of the kept
 * versions of files (ofs_history.c serves it; it comes from the replicated
 * state, so every node shows the same versions). Read-only: it is not in the replicated
 * state, every node shows its own view, and every change there fails with
 * EROFS. Content is rendered at open (so one reader sees one consistent
 * document) and at stat (so the size is right); the files are served with
 * direct_io, so the kernel never caches a stale copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ofs_history.h"
#include "ofs_int.h"

#define RENDER_MAX (1u << 20)

/* The rendered files, in the order readdir lists them. */
static const struct {
	uint64_t ino;
	const char *name;
	enum ofs_status_file which;
	const char *empty; /* content without a status source */
} files[] = {
	{OFS_VINO_STATUS, "status.json", OFS_STATUS_JSON, "{}\n"},
	{OFS_VINO_MEMBERS, "members.json", OFS_MEMBERS_JSON, "{}\n"},
	{OFS_VINO_METRICS, "metrics", OFS_METRICS_TEXT, ""},
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

/* Renders ino's content into a malloc'ed buffer (caller frees). */
static int render(struct ofs *o, uint64_t ino, char **out, size_t *len)
{
	size_t fi = 0;
	while (fi < N_FILES && files[fi].ino != ino)
		fi++;
	if (fi == N_FILES)
		return -ENOENT;
	enum ofs_status_file which = files[fi].which;
	for (size_t cap = 4096; cap <= RENDER_MAX; cap *= 4) {
		char *buf = malloc(cap);
		if (!buf)
			return -ENOMEM;
		int n;
		if (o->status_fn) {
			n = o->status_fn(o->status_ctx, which, buf, cap);
		} else {
			n = (int)strlen(files[fi].empty);
			memcpy(buf, files[fi].empty, (size_t)n);
		}
		if (n == -ENOSPC || (n >= 0 && (size_t)n > cap)) {
			free(buf);
			continue;
		}
		if (n < 0) {
			free(buf);
			return n;
		}
		*out = buf;
		*len = (size_t)n;
		return 0;
	}
	return -EFBIG;
}

static void fill(struct ofs_attr *a, uint64_t ino, uint32_t mode, uint64_t size)
{
	memset(a, 0, sizeof(*a));
	int64_t now = ofs_now_ns();
	a->ino = ino;
	a->mode = mode;
	a->nlink = S_ISDIR(mode) ? 2 : 1;
	a->size = size;
	a->atime_ns = a->mtime_ns = a->ctime_ns = now;
	a->parent = S_ISDIR(mode) ? OFS_ROOT_INO : 0;
}

int ofs_virt_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out)
{
	if (ino == OFS_VINO_DIR) {
		fill(out, ino, S_IFDIR | 0555, 0);
		return 0;
	}
	if (ofs_hist_is_vino(ino))
		return ofs_hist_getattr(o, ino, out);
	char *buf;
	size_t len;
	int rc = render(o, ino, &buf, &len);
	if (rc)
		return rc;
	free(buf);
	fill(out, ino, S_IFREG | 0444, len);
	return 0;
}

int ofs_virt_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out)
{
	if (parent == OFS_ROOT_INO)
		return ofs_virt_getattr(o, OFS_VINO_DIR, out);
	if (ofs_hist_is_vino(parent))
		return ofs_hist_lookup(o, parent, name, out);
	if (parent != OFS_VINO_DIR)
		return -ENOTDIR;
	if (strcmp(name, "history") == 0)
		return ofs_virt_getattr(o, OFS_VINO_HISTORY, out);
	for (size_t i = 0; i < N_FILES; i++)
		if (strcmp(name, files[i].name) == 0)
			return ofs_virt_getattr(o, files[i].ino, out);
	return -ENOENT;
}

int ofs_virt_open(struct ofs *o, uint64_t ino, int flags, struct ofs_file **out)
{
	if (ino == OFS_VINO_DIR)
		return -EISDIR;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return -EROFS;
	struct ofs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	int rc = ofs_hist_is_vino(ino) ? ofs_hist_open(o, ino, &f->vbuf, &f->vlen)
				       : render(o, ino, &f->vbuf, &f->vlen);
	if (rc) {
		free(f);
		return rc;
	}
	f->ino = ino;
	f->flags = flags;
	ofs_file_track(o, f);
	*out = f;
	return 0;
}

int ofs_virt_opendir(struct ofs *o, uint64_t ino, struct ofs_dirent_list **out)
{
	if (ofs_hist_is_vino(ino))
		return ofs_hist_opendir(o, ino, out);
	if (ino != OFS_VINO_DIR)
		return -ENOTDIR;
	struct ofs_dirent_list *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	int rc = ofs_dirent_list_add(l, OFS_VINO_DIR, DT_DIR, ".", 1);
	if (!rc)
		rc = ofs_dirent_list_add(l, OFS_ROOT_INO, DT_DIR, "..", 2);
	for (size_t i = 0; !rc && i < N_FILES; i++)
		rc = ofs_dirent_list_add(l, files[i].ino, DT_REG, files[i].name,
					 strlen(files[i].name));
	if (!rc)
		rc = ofs_dirent_list_add(l, OFS_VINO_HISTORY, DT_DIR, "history", 7);
	if (rc) {
		ofs_dirent_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}
