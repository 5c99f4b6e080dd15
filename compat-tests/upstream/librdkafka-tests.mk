# Builds librdkafka's test-runner from its tests/ directory as the suite's own Makefile does
# (test.c and the framework files plus every [08]nnn-*.c/.cpp test), against the CMake build
# of librdkafka in target/upstream. Used by run.sh:
#   make -f librdkafka-tests.mk SRC=<librdkafka copy> INC=<cmake build>/generated/dummy \
#        LIB=<install>/lib OUT=<dir>
T       := $(SRC)/tests
FW      := test.c testcpp.cpp rusage.c sockem.c sockem_ctrl.c
TESTS   := $(notdir $(wildcard $(T)/[08][0-9][0-9][0-9]-*.c $(T)/[08][0-9][0-9][0-9]-*.cpp))
OBJS    := $(addprefix $(OUT)/,$(addsuffix .o,$(basename $(FW) $(TESTS))))
# rapidjson (rapidjson-dev) is what 0098 needs; librdkafka's CMake build never defines it.
# -fmacro-prefix-map: upstream compiles in tests/, so __FILE__ is "0110-batch_size.cpp"; the C++
# tests put it in topic names (an absolute path would make them illegal).
CPPFLAGS := -I$(SRC)/src -I$(SRC)/src-cpp -I$(INC) -DWITH_RAPIDJSON=1 -fmacro-prefix-map=$(T)/=
CFLAGS   := -g -O1 -pthread -w
CXXFLAGS := -g -O1 -pthread -w -std=c++11

$(OUT)/test-runner: $(OBJS)
	$(CXX) -o $@ $^ -L$(LIB) -Wl,-rpath,$(LIB) -lrdkafka++ -lrdkafka -pthread -lm -ldl

# Objects depend on this file too, so a change of flags here rebuilds them.
$(OUT)/%.o: $(T)/%.c $(MAKEFILE_LIST) | $(OUT)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(OUT)/%.o: $(T)/%.cpp $(MAKEFILE_LIST) | $(OUT)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(OUT):
	mkdir -p $@
