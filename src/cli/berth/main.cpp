// berth: the OCI runtime command line. Parsing and printing only; the work is in libberth.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    if (argc > 1 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "-v") == 0)) {
        std::printf("berth version %s\nspec: 1.2.0\n", BERTH_VERSION);
        return 0;
    }
    std::fprintf(stderr, "berth: no command given\n");
    return 1;
}
