"""Structure figures of the roles (for closing notes): tasks_from total, role-to-role tasks_from,
noqa count, the private __ variables one role sets and another reads, the files of a role that
reach into another role's directory, and the longest task file.

    python3 scripts/structure_metrics.py [CHECKOUT]
"""
import re,glob,collections,sys,os
os.chdir(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
roles=sorted(p.split('/')[1] for p in glob.glob('roles/*/'))
def owner_of(var):
    body=var[2:]
    for r in sorted(roles,key=len,reverse=True):
        if body.startswith(r+'_'): return r
    return None
uses=collections.defaultdict(set)
for f in glob.glob('roles/**/*',recursive=True):
    if not (f.endswith('.yml') or f.endswith('.j2')): continue
    role=f.split('/')[1]
    for m in re.finditer(r'\b(__[a-z][a-z0-9_]+)', open(f).read()):
        o=owner_of(m.group(1))
        if o and o!=role: uses[m.group(1)].add(role)
rr=0
for f in glob.glob('roles/**/*.yml',recursive=True):
    txt=open(f).read()
    for m in re.finditer(r'name:\s*(\S+)\s*\n(?:\s+.*\n){0,3}?\s+tasks_from:\s*(\S+)',txt):
        if m.group(1).split('.')[-1]!=f.split('/')[1]: rr+=1
noqa=sum(open(f).read().count('noqa') for f in glob.glob('roles/**/*.yml',recursive=True)+glob.glob('playbooks/*.yml')+['site.yml'])
tf=sum(open(f).read().count('tasks_from:') for f in glob.glob('roles/**/*.yml',recursive=True)+glob.glob('playbooks/*.yml')+['site.yml'])
reach=sorted(f for f in glob.glob('roles/**/*',recursive=True)
             if (f.endswith('.yml') or f.endswith('.j2')) and re.search(r"role_path \| dirname|/roles/", open(f).read()))
tasks=glob.glob('roles/*/tasks/*.yml')+glob.glob('playbooks/*.yml')+['site.yml']
longest=max(tasks,key=lambda f: sum(1 for _ in open(f)))
print(f"tasks_from {tf}, role->role {rr}, noqa {noqa}, cross-role __ vars {len(uses)}: {sorted(uses)}")
print(f"files reaching into another role {len(reach)}: {reach}; longest task file {longest} "
      f"({sum(1 for _ in open(longest))} lines)")
