// dfcfs: the FUSE daemon of dfs. `dfcfs dfc.conf /mnt/dfs` mounts the user's
// files; see mount_main.h.
#include "fuse_client/fuse/mount_main.h"

int main(int argc, char** argv) { return dfs::fuse::RunDfcfs(argc, argv); }
