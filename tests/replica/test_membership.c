/*
 * Member tables (fs/replica/membership.c): they come from the network (stop-sign
 * metadata, MEMBERS frames) and from disk, so decoding must take exactly
 * what encoding makes and refuse everything else; and the next
 * configuration must follow the one-node-per-change rules.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "membership.h"

#define KEY_A "rq:rM>}U?@Lns47E1ZkR.o@nAFcmmsL/@{H8]yf7"
#define KEY_B "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define KEY_C "8E0Wn(v+/*9^z4xyBpY}Xux1QwDk1lKR0kMTU3KG"
#define KEY_D "JTKVSBxy)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"

static void three(struct membership *m)
{
	memset(m, 0, sizeof(*m));
	m->config_id = 4;
	m->base = 1234;
	m->n = 3;
	const char *keys[] = {KEY_A, KEY_B, KEY_C};
	for (size_t i = 0; i < 3; i++) {
		m->peers[i].id = i + 1;
		snprintf(m->peers[i].address, sizeof(m->peers[i].address), "10.0.0.%zu:7100",
			 i + 1);
		snprintf(m->peers[i].public_key, sizeof(m->peers[i].public_key), "%s", keys[i]);
	}
}

/* Both list the same members with the same addresses and keys. */
static bool same_members(const struct membership *a, const struct membership *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct cfg_peer *p = &a->peers[i], *q = &b->peers[i];
		if (p->id != q->id || strcmp(p->address, q->address) != 0 ||
		    strcmp(p->public_key, q->public_key) != 0)
			return false;
	}
	return true;
}

static void test_membership_round_trip(void **state)
{
	struct membership m, back;
	char buf[MEMBERSHIP_ENC_MAX], err[200];
	size_t len;
	three(&m);
	m.read_quorum = 3;
	m.write_quorum = 2;
	m.peers[1].public_key[0] = '\0'; /* plaintext members have none */
	assert_int_equal(membership_encode(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(membership_decode(&back, buf, len, err, sizeof(err)), 0);
	assert_int_equal(back.config_id, 4);
	assert_int_equal(back.base, 1234);
	assert_int_equal(back.read_quorum, 3);
	assert_int_equal(back.write_quorum, 2);
	assert_true(same_members(&m, &back));
	assert_string_equal(back.peers[1].public_key, "");
	assert_non_null(membership_find(&back, 3));
	assert_null(membership_find(&back, 4));
	char ids[64];
	membership_ids(&back, ids, sizeof(ids));
	assert_string_equal(ids, "1,2,3");
	/* Too small a buffer is an error, not a truncated table. */
	assert_int_equal(membership_encode(&m, buf, 40, &len), -ENOSPC);
}

static void expect_bad(const char *text)
{
	struct membership m;
	char err[200] = "";
	assert_int_equal(membership_decode(&m, text, strlen(text), err, sizeof(err)), -EBADMSG);
	assert_true(err[0] != '\0');
}

static void test_membership_decode_refuses_bad_tables(void **state)
{
	const char *ok_head = "omnifs-membership 1\nconfig 2\nbase 7\nquorum 0 0\n";
	char text[1024];
	expect_bad("");
	expect_bad("omnifs-membership 2\nconfig 2\nbase 0\nquorum 0 0\nnode 1 a:1 -\n");
	expect_bad("omnifs-membership 1\nbase 0\nquorum 0 0\nnode 1 a:1 -\n"); /* no config */
	expect_bad("omnifs-membership 1\nconfig 0\nbase 0\nquorum 0 0\nnode 1 a:1 -\n");
	expect_bad("omnifs-membership 1\nconfig 2\nbase 0\nquorum 0 0\n"); /* no members */
	expect_bad("omnifs-membership 1\nconfig 2\nbase -1\nquorum 0 0\nnode 1 a:1 -\n");
	expect_bad("omnifs-membership 1\nconfig 2\nbase 0\nquorum 0\nnode 1 a:1 -\n");
	expect_bad("omnifs-membership 1\nconfig 2\nbase 0\nquorum 0 0\nnode 1 a:1 -"); /* no \n */
	const char *bad_nodes[] = {
		"node 0 a:1 -\n",		/* id 0 */
		"node 1 a:1 -\nnode 1 b:2 -\n", /* twice */
		"node 1 a -\n",			/* no port */
		"node 1 a:99999 -\n",		/* port range */
		"node 1 a:1 short\n",		/* not a key */
		"node 1 a:1\n",			/* no key field */
		"node 1 a:1 - extra\n",		/* trailing field */
		"node x a:1 -\n",		/* not a number */
		"node +1 a:1 -\n",		/* sign */
		"weird 1\n",			/* unknown line */
	};
	for (size_t i = 0; i < sizeof(bad_nodes) / sizeof(bad_nodes[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", ok_head, bad_nodes[i]);
		expect_bad(text);
	}
	/* An embedded NUL is not text. */
	static const char nul[] =
		"omnifs-membership 1\nconfig 2\nbase 0\nquorum 0 0\nnode 1 a:1 -\0\n";
	struct membership m;
	char err[200];
	assert_int_equal(membership_decode(&m, nul, sizeof(nul) - 1, err, sizeof(err)), -EBADMSG);
	/* The same head with a good node decodes. */
	snprintf(text, sizeof(text), "%snode 9 host.example:7100 " KEY_A "\nnode 2 [::1]:1 -\n",
		 ok_head);
	assert_int_equal(membership_decode(&m, text, strlen(text), err, sizeof(err)), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.peers[0].id, 2); /* sorted by id */
	assert_int_equal(m.peers[1].id, 9);
}

static void test_membership_next_rules(void **state)
{
	struct membership cur, next;
	char err[300];
	three(&cur);
	cur.read_quorum = 3;
	cur.write_quorum = 2;
	struct cfg_peer d = {.id = 4, .address = "10.0.0.4:7100", .public_key = KEY_D};

	assert_int_equal(membership_next(&next, &cur, 0, &d, false, err, sizeof(err)), 0);
	assert_int_equal(next.config_id, 5);
	assert_int_equal(next.n, 4);
	assert_int_equal(next.base, 0);
	assert_int_equal(next.read_quorum, 0); /* majorities again */
	assert_string_equal(membership_find(&next, 4)->public_key, KEY_D);

	/* replace = remove + add in one change */
	assert_int_equal(membership_next(&next, &cur, 3, &d, false, err, sizeof(err)), 0);
	assert_null(membership_find(&next, 3));
	assert_non_null(membership_find(&next, 4));
	assert_int_equal(next.n, 3);

	assert_int_equal(membership_next(&next, &cur, 2, NULL, false, err, sizeof(err)), 0);
	assert_int_equal(next.n, 2);

	/* Refusals, each with a reason. */
	struct cfg_peer dup = d;
	dup.id = 2;
	err[0] = '\0';
	assert_int_equal(membership_next(&next, &cur, 0, &dup, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "already a member"));
	assert_int_equal(membership_next(&next, &cur, 7, NULL, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a member"));
	struct cfg_peer nokey = {.id = 4, .address = "10.0.0.4:7100"};
	assert_int_equal(membership_next(&next, &cur, 0, &nokey, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "public key"));
	/* ...which plaintext clusters do not need (and do not keep). */
	assert_int_equal(membership_next(&next, &cur, 0, &d, true, err, sizeof(err)), 0);
	assert_string_equal(membership_find(&next, 4)->public_key, "");
	struct cfg_peer badaddr = d;
	snprintf(badaddr.address, sizeof(badaddr.address), "nowhere");
	assert_int_equal(membership_next(&next, &cur, 0, &badaddr, false, err, sizeof(err)),
			 -EINVAL);
	/* A re-added id is refused even in a replace (a new node gets a new id). */
	struct cfg_peer same = d;
	same.id = 3;
	assert_int_equal(membership_next(&next, &cur, 3, &same, false, err, sizeof(err)), -EINVAL);
	/* Never below two members. */
	struct membership two = cur;
	two.n = 2;
	assert_int_equal(membership_next(&next, &two, 1, NULL, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at least 2"));
}

/* rekey swaps one member's key in the next configuration and nothing
 * else; equal compares everything a confirmed table must agree on. */
static void test_membership_rekey_and_equal(void **state)
{
	struct membership cur, next, copy;
	char err[256];
	three(&cur);
	assert_int_equal(membership_rekey(&next, &cur, 2, KEY_D, err, sizeof(err)), 0);
	assert_int_equal(next.config_id, cur.config_id + 1);
	assert_int_equal(next.n, 3);
	assert_string_equal(membership_find(&next, 2)->public_key, KEY_D);
	assert_string_equal(membership_find(&next, 1)->public_key, KEY_A);
	assert_string_equal(membership_find(&next, 3)->address, "10.0.0.3:7100");
	assert_int_equal(membership_rekey(&next, &cur, 9, KEY_D, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "n9 is not a member"));
	assert_int_equal(membership_rekey(&next, &cur, 2, "short", err, sizeof(err)), -EINVAL);
	assert_int_equal(membership_rekey(&next, &cur, 2, KEY_B, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "already has this key"));

	copy = cur;
	assert_true(membership_equal(&cur, &copy));
	copy.base++;
	assert_false(membership_equal(&cur, &copy));
	copy = cur;
	copy.config_id++;
	assert_false(membership_equal(&cur, &copy));
	copy = cur;
	snprintf(copy.peers[2].public_key, sizeof(copy.peers[2].public_key), "%s", KEY_D);
	assert_false(membership_equal(&cur, &copy));
	copy = cur;
	snprintf(copy.peers[0].address, sizeof(copy.peers[0].address), "10.0.0.9:7100");
	assert_false(membership_equal(&cur, &copy));
	copy = cur;
	copy.n = 2;
	assert_false(membership_equal(&cur, &copy));
	copy = cur;
	copy.write_quorum = 3;
	assert_false(membership_equal(&cur, &copy));
}

/* Roles: a learner's line says so and round-trips; a table of learners
 * alone is refused; add, promote and demote keep two voters at least. */
static void test_membership_roles(void **state)
{
	struct membership cur, next, back;
	char buf[MEMBERSHIP_ENC_MAX], err[200];
	size_t len;
	three(&cur);
	struct cfg_peer d = {
		.id = 4, .address = "10.0.0.4:7100", .public_key = KEY_D, .learner = true};
	assert_int_equal(membership_next(&next, &cur, 0, &d, false, err, sizeof(err)), 0);
	assert_int_equal(membership_voters(&next), 3);
	assert_true(membership_is_learner(&next, 4));
	assert_false(membership_is_voter(&next, 4));
	assert_true(membership_is_voter(&next, 1));
	assert_int_equal(membership_encode(&next, buf, sizeof(buf), &len), 0);
	assert_non_null(strstr(buf, "node 4 10.0.0.4:7100 " KEY_D " learner\n"));
	assert_non_null(strstr(buf, "node 1 10.0.0.1:7100 " KEY_A "\n")); /* voters as before */
	assert_int_equal(membership_decode(&back, buf, len, err, sizeof(err)), 0);
	assert_true(membership_equal(&back, &next));
	back.peers[3].learner = false;
	assert_false(membership_equal(&back, &next)); /* the role counts */

	/* Promote, demote; refused: twice the same role, not a member, one voter. */
	cur = next;
	assert_int_equal(membership_set_role(&next, &cur, 4, false, err, sizeof(err)), 0);
	assert_int_equal(next.config_id, cur.config_id + 1);
	assert_int_equal(membership_voters(&next), 4);
	assert_int_equal(membership_set_role(&next, &cur, 4, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "already a learner"));
	assert_int_equal(membership_set_role(&next, &cur, 9, false, err, sizeof(err)), -EINVAL);
	assert_int_equal(membership_set_role(&next, &cur, 1, true, err, sizeof(err)), 0);
	cur = next; /* voters 2,3 */
	assert_int_equal(membership_set_role(&next, &cur, 2, true, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "2 voters"));
	assert_int_equal(membership_next(&next, &cur, 3, NULL, false, err, sizeof(err)), -EINVAL);
	assert_int_equal(membership_next(&next, &cur, 4, NULL, false, err, sizeof(err)), 0);

	const char *bad[] = {
		"omnifs-membership 1\nconfig 2\nbase 0\nquorum 0 0\nnode 1 a:1 - learner\n",
		"omnifs-membership 1\nconfig 2\nbase 0\nquorum 0 0\nnode 1 a:1 -\nnode 2 a:2 - "
		"voter\n",
		"omnifs-membership 1\nconfig 2\nbase 0\nquorum 0 0\nnode 1 a:1 -\nnode 2 a:2 - "
		"learner x\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(bad[i]);
}

static void test_membership_file(void **state)
{
	char dir[] = "/tmp/omnifs-membership-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct membership m, back;
	char err[512] = "", path[600];
	assert_int_equal(membership_file_read(dir, &back, err, sizeof(err)), -ENOENT);
	three(&m);
	assert_int_equal(membership_file_write(dir, &m, err, sizeof(err)), 0);
	assert_int_equal(membership_file_read(dir, &back, err, sizeof(err)), 0);
	assert_true(same_members(&m, &back));
	assert_int_equal(back.base, m.base);

	snprintf(path, sizeof(path), "%s/membership", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("omnifs-membership 1\nconfig 2\n", f);
	fclose(f);
	assert_int_equal(membership_file_read(dir, &back, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, path)); /* names the file */
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_membership_round_trip),
		cmocka_unit_test(test_membership_decode_refuses_bad_tables),
		cmocka_unit_test(test_membership_next_rules),
		cmocka_unit_test(test_membership_rekey_and_equal),
		cmocka_unit_test(test_membership_roles),
		cmocka_unit_test(test_membership_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
