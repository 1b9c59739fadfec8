/*
 * The names inodes were last seen under on this node, so that a path can be
 * found for an inode without a scan of every directory entry: the state's
 * keys are inode numbers, and a file has no pointer to its name. One table
 * serves the change notes (ofs_note.c) and the replay (replay.c); lookups,
 * listings, commits and applied changes teach it.
 *
 * A name is a hint: whoever recalls one checks it against the state it
 * reads before use. Without one, a scan of directory entries finds a name
 * (ofs_names_find). The table is direct-mapped, so a collision only forgets
 * the older name.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ofs_int.h"

#define NAMES_SLOTS_BITS 14 /* 16384 names remembered per node */
#define NAMES_SLOTS	 (1u << NAMES_SLOTS_BITS)

struct name_slot {
	uint64_t ino; /* 0 = empty */
	uint64_t parent;
	uint16_t len;
	char name[OFS_NAME_MAX];
};

struct ofs_names {
	pthread_mutex_t lock; /* the slots; a leaf: no other lock under it */
	struct name_slot slot[NAMES_SLOTS];
};

struct ofs_names *ofs_names_new(void)
{
	struct ofs_names *n = calloc(1, sizeof(*n));
	if (n)
		pthread_mutex_init(&n->lock, NULL);
	return n;
}

void ofs_names_destroy(struct ofs_names **np)
{
	if (!*np)
		return;
	pthread_mutex_destroy(&(*np)->lock);
	free(*np);
	*np = NULL;
}

static struct name_slot *slot_of(struct ofs_names *n, uint64_t ino)
{
	return &n->slot[(ino * 0x9e3779b97f4a7c15ull) >> (64 - NAMES_SLOTS_BITS)];
}

void ofs_names_learn(struct ofs *o, uint64_t ino, uint64_t parent, const char *name, size_t len)
{
	struct ofs_names *n = o->names;
	if (!n || !len || len > OFS_NAME_MAX || ino == OFS_ROOT_INO || ofs_ino_is_virtual(ino))
		return;
	pthread_mutex_lock(&n->lock);
	struct name_slot *s = slot_of(n, ino);
	s->ino = ino;
	s->parent = parent;
	s->len = (uint16_t)len;
	memcpy(s->name, name, len);
	pthread_mutex_unlock(&n->lock);
}

size_t ofs_names_recall(struct ofs *o, uint64_t ino, uint64_t *parent, char *name)
{
	struct ofs_names *n = o->names;
	size_t len = 0;
	if (!n)
		return 0;
	pthread_mutex_lock(&n->lock);
	struct name_slot *s = slot_of(n, ino);
	if (s->ino == ino) {
		*parent = s->parent;
		len = s->len;
		memcpy(name, s->name, len);
	}
	pthread_mutex_unlock(&n->lock);
	return len;
}

int ofs_names_find(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		   uint64_t version)
{
	(void)version;
	struct ofs_name_find *f = arg;
	uint64_t child, parent;
	uint8_t dtype;
	const char *name;
	size_t len;
	if (ofs_dirent_decode(val, val_len, &child, &dtype) || child != f->ino)
		return 0;
	if (ofs_key_parse_dirent(key, key_len, &parent, &name, &len) || len > OFS_NAME_MAX)
		return 0;
	f->parent = parent;
	f->len = len;
	memcpy(f->name, name, len);
	f->name[len] = '\0';
	return 1;
}
