#include <stdio.h>
#include <greet.h>

int main(void) {
    printf("%s %d\n", greet_message(), greet_answer());
    return 0;
}
