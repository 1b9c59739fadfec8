/*
 * The one include for cmocka tests: cmocka 1.1.5 needs these standard
 * headers before <cmocka.h>.
 */
#ifndef OMNIFS_TEST_H
#define OMNIFS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#endif /* OMNIFS_TEST_H */
