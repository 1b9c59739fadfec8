/* The omnifs-keygen program: see keygen.c. */
#include "keygen.h"

int main(int argc, char **argv)
{
	return keygen_main(argc, argv);
}
