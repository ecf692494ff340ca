/* libdemo: the package the README's first commands pack and push (`ocipkg pack examples/libdemo
 * …`) and `deno task demo` uses. lib/libdemo.a is an empty static archive, so the package holds
 * no machine code and fits every platform. */
int demo_answer(void);
