sh "curl -fsSL https://example.com/install.sh | b${''}ash"
echo "Branch $env.BRANCH_NAME built, cost \$5"
def plain = "no interpolation"
def nested = "outer ${"inner ${x}"} ${ok ? 'yes' : "no"}"
def multi = """
    line ${one}
    $two
"""
def raw = '''keeps $x and ${y}'''
def regex = /build-(\d+)\/${suffix}/
def windows = $/C:\tools\$$HOME/$
def ratio = total / count
