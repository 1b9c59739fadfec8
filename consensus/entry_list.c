/* The growable entry list storage reads fill. See storage.h. */
#include "storage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int make_room(struct opx_entry_list *l)
{
	if (l->n < l->cap)
		return 0;
	uint32_t cap = l->cap ? l->cap * 2 : 16;
	struct opx_entry *e = realloc(l->entries, (size_t)cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	l->entries = e;
	l->cap = cap;
	return 0;
}

int opx_entry_list_adopt(struct opx_entry_list *l, void *data, uint32_t len)
{
	if (make_room(l)) {
		free(data);
		return -ENOMEM;
	}
	l->entries[l->n].data = data;
	l->entries[l->n].len = len;
	l->n++;
	return 0;
}

int opx_entry_list_push(struct opx_entry_list *l, const void *data, uint32_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	return opx_entry_list_adopt(l, copy, len);
}

void opx_entry_list_clear(struct opx_entry_list *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		free((void *)l->entries[i].data);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}
