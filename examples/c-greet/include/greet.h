#ifndef GREET_H
#define GREET_H

/* The answer, as a number. */
int greet_answer(void);

/* A greeting; a static string, never freed. */
const char *greet_message(void);

#endif
