#include "greet.h"

int greet_answer(void) { return 42; }

const char *greet_message(void) { return "hello from libgreet"; }
