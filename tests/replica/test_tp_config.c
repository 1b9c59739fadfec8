/*
 * tp_config_from_cfg: the daemon's config file becomes the transport's
 * config: endpoints, peers without ourselves, peer keys, our keypair from the
 * key file (whose mode is checked), silence from the election timeout.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tp_config.h"

static void test_tp_config_from_cfg_curve(void **state)
{
	char dir[] = "/tmp/omnifs-tpcfg-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char key_path[128], err[512];
	snprintf(key_path, sizeof(key_path), "%s/n1.key", dir);
	char pub[3][TP_KEY_Z85_LEN + 1], sec[3][TP_KEY_Z85_LEN + 1];
	for (int i = 0; i < 3; i++)
		assert_int_equal(tp_key_generate(pub[i], sec[i]), 0);
	assert_int_equal(tp_keyfile_write(key_path, "n1", pub[0], sec[0], 0, err, sizeof(err)), 0);

	char text[2048];
	snprintf(text, sizeof(text),
		 "[node]\nid = 1\ncluster = tpcfg\ndata_dir = /d\n"
		 "[peers]\n1 = 127.0.0.1:7101\n2 = 127.0.0.1:7102\n3 = [::1]:7103\n"
		 "[peer_keys]\n2 = %s\n3 = %s\n"
		 "[timing]\nelection_timeout_ms = 250\n"
		 "[security]\nsecret_key_file = %s\n",
		 pub[1], pub[2], key_path);
	struct cfg *c = malloc(sizeof(*c));
	struct tp_config *tc = malloc(sizeof(*tc));
	assert_non_null(c);
	assert_non_null(tc);
	assert_int_equal(cfg_parse_string(c, text, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(tp_config_from_cfg(c, tc, err, sizeof(err)), 0);
	assert_int_equal(tc->node_id, 1);
	assert_int_equal(tc->cluster_id, cfg_cluster_hash("tpcfg"));
	assert_false(tc->plaintext);
	assert_string_equal(tc->listen, "tcp://127.0.0.1:7101");
	assert_int_equal(tc->n_peers, 2);
	assert_int_equal(tc->peers[0].id, 2);
	assert_string_equal(tc->peers[0].endpoint, "tcp://127.0.0.1:7102");
	assert_int_equal(tc->peers[1].id, 3);
	assert_string_equal(tc->peers[1].endpoint, "tcp://[::1]:7103");
	uint8_t k[TP_KEY_LEN];
	assert_int_equal(tp_key_from_z85(pub[2], k), 0);
	assert_memory_equal(tc->peers[1].public_key, k, TP_KEY_LEN);
	assert_int_equal(tp_key_from_z85(pub[0], k), 0);
	assert_memory_equal(tc->public_key, k, TP_KEY_LEN);
	assert_int_equal(tp_key_from_z85(sec[0], k), 0);
	assert_memory_equal(tc->secret_key, k, TP_KEY_LEN);
	assert_int_equal(tc->silence_ms, 1000);

	/* A key file others can read stops the node with a message naming it. */
	assert_int_equal(chmod(key_path, 0644), 0);
	assert_int_equal(tp_config_from_cfg(c, tc, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, key_path));

	unlink(key_path);
	rmdir(dir);
	free(c);
	free(tc);
}

static void test_tp_config_from_cfg_plaintext(void **state)
{
	static const char text[] = "[node]\nid = 2\ncluster = c\ndata_dir = /d\n"
				   "listen = 0.0.0.0:7202\n"
				   "[peers]\n1 = 10.0.0.1:7201\n2 = 10.0.0.2:7202\n"
				   "[security]\nplaintext = true\nplaintext_allow_network = true\n";
	struct cfg *c = malloc(sizeof(*c));
	struct tp_config *tc = malloc(sizeof(*tc));
	char err[512];
	int rc = cfg_parse_string(c, text, "p.conf", err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(tp_config_from_cfg(c, tc, err, sizeof(err)), 0);
	assert_true(tc->plaintext);
	assert_string_equal(tc->listen, "tcp://0.0.0.0:7202");
	assert_int_equal(tc->n_peers, 1);
	assert_int_equal(tc->peers[0].id, 1);
	free(c);
	free(tc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tp_config_from_cfg_curve),
		cmocka_unit_test(test_tp_config_from_cfg_plaintext),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
